// pulumi-resource-random is our build of the random resource provider: the upstream Terraform provider
// behind Pulumi's Terraform bridge, serving the schema tfgen generated at build time.
package main

import (
	"context"
	_ "embed"

	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"

	glue "github.com/terraform-providers/terraform-provider-random/pulumiglue"
)

// version is set with -ldflags "-X main.version=..." to the version of the pulumi-random Python SDK
// pinned in requirements.txt: the binary is our build of the glue, reporting the SDK's version so
// that the engine's plugin version check accepts it.
var version string

// Both files are written next to this one by tfgen during the build (scripts/providers/install);
// schema.json there already carries the version.
var (
	//go:embed schema.json
	schema []byte
	//go:embed bridge-metadata.json
	metadata []byte
)

func main() {
	pftfbridge.Main(context.Background(), "random", glue.Provider(version, metadata),
		pftfbridge.ProviderMetadata{PackageSchema: schema})
}
