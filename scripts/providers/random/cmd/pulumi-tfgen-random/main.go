// pulumi-tfgen-random writes the Pulumi schema (schema.json) and bridge-metadata.json of our bridged
// random provider: `pulumi-tfgen-random schema --skip-docs --skip-examples --out DIR`.
package main

import (
	pftfgen "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfgen"

	glue "github.com/terraform-providers/terraform-provider-random/pulumiglue"
)

// version is set with -ldflags "-X main.version=..." by scripts/providers/install.
var version string

func main() {
	pftfgen.Main("random", glue.Provider(version, nil))
}
