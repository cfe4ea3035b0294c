#!/usr/bin/env bash
# Regenerate the JSON schemas in this folder from Grafana's published TypeScript types.
# Run once by hand when Grafana is upgraded (needs node and the npm registry); the tests only
# read the committed output, so CI never needs node.
#
#   observability/grafana/schema/generate.sh
#
# Source: the npm package @grafana/schema (Apache-2.0, Grafana Labs), whose dist/types hold
# the classic dashboard model (raw/dashboard/x/types.gen.d.ts, the JSON that file
# provisioning loads) and each panel plugin's options (raw/composable/<panel>/panelcfg).
# ts-json-schema-generator turns each type into a JSON schema (draft-07); interfaces become
# objects with additionalProperties: false, so unknown or misspelt keys are errors.
set -euo pipefail
GRAFANA_SCHEMA_VERSION=13.2.3
GENERATOR_VERSION=2.9.0
out="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund \
  "@grafana/schema@${GRAFANA_SCHEMA_VERSION}" "ts-json-schema-generator@${GENERATOR_VERSION}"
types=node_modules/@grafana/schema/dist/types/raw

gen() {  # gen <types file> <type name> <output file>
  npx ts-json-schema-generator --no-type-check --path "$1" --type "$2" -o "$out/$3"
}
gen "$types/dashboard/x/types.gen.d.ts" Dashboard dashboard.schema.json
for panel in timeseries heatmap stat bargauge; do
  gen "$types/composable/$panel/panelcfg/x/types.gen.d.ts" Options "panel-$panel-options.schema.json"
done
for panel in timeseries heatmap; do
  gen "$types/composable/$panel/panelcfg/x/types.gen.d.ts" FieldConfig \
    "panel-$panel-fieldconfig.schema.json"
done
echo "@grafana/schema ${GRAFANA_SCHEMA_VERSION}, ts-json-schema-generator ${GENERATOR_VERSION}" \
  > "$out/VERSION"
