// Renders the Pushcart app-embed block (integrations/shopify) with LiquidJS, as a storefront
// would: reads {"settings": {...}} as JSON on stdin, prints the HTML. The block's {% schema %}
// is Shopify's own tag and renders nothing.
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { Liquid } = require("liquidjs");

const BLOCK = path.resolve(__dirname, "../../../integrations/shopify/extensions/pushcart-embed/blocks/pushcart.liquid");
const engine = new Liquid({ strictFilters: true });
engine.registerTag("schema", {
  parse(token, remain) {
    while (remain.length) {
      if (remain.shift().name === "endschema") return;
    }
    throw new Error("{% schema %} is not closed");
  },
  render() { return ""; },
});

const input = JSON.parse(fs.readFileSync(0, "utf8"));
engine.parseAndRender(fs.readFileSync(BLOCK, "utf8"), { block: { settings: input.settings } })
  .then((html) => process.stdout.write(html))
  .catch((error) => { process.stderr.write(String(error) + "\n"); process.exitCode = 1; });
