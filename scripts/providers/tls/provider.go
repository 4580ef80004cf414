// Package pulumiglue bridges the upstream Terraform tls provider (a plugin-framework provider) to a
// Pulumi resource provider whose schema matches the pulumi-tls Python SDK that requirements.txt pins.
//
// The module path sits under the upstream module's path (github.com/hashicorp/terraform-provider-tls/...)
// only so that Go lets it import the upstream's internal/provider package, where New() lives.
// Ref: https://pkg.go.dev/cmd/go#hdr-Internal_Directories (`go help gopath`, "Internal Directories").
package pulumiglue

import (
	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"

	upstream "github.com/hashicorp/terraform-provider-tls/internal/provider"
)

// Provider describes the bridged provider. version is the version the binary reports (the pinned
// SDK's); metadata is the bridge-metadata.json that tfgen wrote, or nil when running tfgen itself.
func Provider(version string, metadata []byte) tfbridge.ProviderInfo {
	info := tfbridge.ProviderInfo{
		P:            pftfbridge.ShimProvider(upstream.New()),
		Name:         "tls",
		Version:      version,
		Description:  "Terraform's tls provider bridged to Pulumi (query-engine-stack build).",
		License:      "MPL-2.0",
		MetadataInfo: tfbridge.NewProviderMetadata(metadata),
	}
	// tls_<name> becomes tls:index/<name>:<Name> (tls_private_key -> tls:index/privateKey:PrivateKey),
	// data sources tls_<name> become the functions tls:index/get<Name>:get<Name>.
	info.MustComputeTokens(tokens.SingleModule("tls_", "index", tokens.MakeStandard("tls")))
	return info
}
