// pulumi-tfgen-tls writes the Pulumi schema (schema.json) and bridge-metadata.json of our bridged
// tls provider: `pulumi-tfgen-tls schema --skip-docs --skip-examples --out DIR`.
package main

import (
	pftfgen "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfgen"

	glue "github.com/hashicorp/terraform-provider-tls/pulumiglue"
)

// version is set with -ldflags "-X main.version=..." by scripts/providers/install.
var version string

func main() {
	pftfgen.Main("tls", glue.Provider(version, nil))
}
