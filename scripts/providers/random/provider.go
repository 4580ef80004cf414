// Package pulumiglue bridges the upstream Terraform random provider (a plugin-framework provider) to a
// Pulumi resource provider whose schema matches the pulumi-random Python SDK that requirements.txt pins.
//
// The module path sits under the upstream module's path
// (github.com/terraform-providers/terraform-provider-random/...) only so that Go lets it import the
// upstream's internal/provider package, which is where the upstream keeps New().
// Ref: https://pkg.go.dev/cmd/go#hdr-Internal_Directories (`go help gopath`, "Internal Directories").
package pulumiglue

import (
	"context"
	"fmt"

	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	upstream "github.com/terraform-providers/terraform-provider-random/internal/provider"
)

// Provider describes the bridged provider. version is the version the binary reports (the pinned
// SDK's); metadata is the bridge-metadata.json that tfgen wrote, or nil when running tfgen itself.
func Provider(version string, metadata []byte) tfbridge.ProviderInfo {
	info := tfbridge.ProviderInfo{
		P:            pftfbridge.ShimProvider(upstream.New()),
		Name:         "random",
		Version:      version,
		Description:  "Terraform's random provider bridged to Pulumi (query-engine-stack build).",
		License:      "MPL-2.0",
		MetadataInfo: tfbridge.NewProviderMetadata(metadata),
		Resources: map[string]*tfbridge.ResourceInfo{
			// random_bytes is the one resource with no "id" attribute. Its Terraform import ID is the
			// base64 value (ImportState decodes it), so the Pulumi ID is the same string, which keeps
			// `pulumi import` working as the SDK documents.
			"random_bytes": {ComputeID: idFromProperty("base64")},
		},
	}
	// Every Terraform type random_<name> becomes random:index/random<Name>:Random<Name>, the tokens
	// of the SDK (e.g. random_password -> random:index/randomPassword:RandomPassword): strip the
	// prefix into the single module "index", then put "Random" back in front of the type name.
	standard := tokens.MakeStandard("random")
	info.MustComputeTokens(tokens.SingleModule("random_", "index", func(module, name string) (string, error) {
		return standard(module, "Random"+name)
	}))
	return info
}

// idFromProperty uses a string output as the resource ID, unwrapping it when the bridge has marked it
// secret (IDs cannot carry a secret marker).
func idFromProperty(key resource.PropertyKey) tfbridge.ComputeID {
	return func(_ context.Context, state resource.PropertyMap) (resource.ID, error) {
		v, ok := state[key]
		if !ok {
			return "", fmt.Errorf("state has no %q to use as the ID", key)
		}
		if v.IsSecret() {
			v = v.SecretValue().Element
		}
		if !v.IsString() || v.StringValue() == "" {
			return "", fmt.Errorf("%q is not a non-empty string: %v", key, v)
		}
		return resource.ID(v.StringValue()), nil
	}
}
