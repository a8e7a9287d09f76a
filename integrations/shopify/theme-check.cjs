// Runs Shopify's theme-check (the @shopify/theme-check-node package) on the theme app extension
// with its own config, prints the offenses as JSON and exits 1 when there is any error or warning.
// Usage: node integrations/shopify/theme-check.cjs [extension folder]
"use strict";
const path = require("node:path");
const { themeCheckRun } = require("@shopify/theme-check-node");

async function main() {
  const root = path.resolve(process.argv[2] || path.join(__dirname, "extensions", "pushcart-embed"));
  // The config lives beside the app, not in the extension: the CLI deploys the extension's folder.
  const { offenses } = await themeCheckRun(root, path.join(__dirname, "theme-check.yml"), () => {});
  const found = offenses.map((o) => ({
    check: o.check, severity: ["error", "warning", "info"][o.severity] || String(o.severity),
    file: path.relative(root, o.uri.replace(/^file:\/\//, "")), line: o.start.line + 1, message: o.message,
  }));
  process.stdout.write(JSON.stringify(found, null, 2) + "\n");
  process.exitCode = found.some((o) => o.severity !== "info") ? 1 : 0;
}

main().catch((error) => { process.stderr.write(String(error && error.stack || error) + "\n"); process.exitCode = 2; });
