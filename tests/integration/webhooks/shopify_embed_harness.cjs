// Renders the Pushcart app-embed block (integrations/shopify) with LiquidJS, as a storefront
// would: reads {"settings": {...}} as JSON on stdin, prints the HTML. The block's {% schema %}
// is Shopify's own tag and renders nothing; a setting the input leaves out takes the schema's
// "default", as Shopify gives it. Shopify's image_url filter is stood in for: an image setting
// here is {"src": "//host/path?v=1"}, and the filter adds the size parameters to it as Shopify's
// CDN URLs carry them.
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
engine.registerFilter("image_url", (image, ...args) => {
  if (!image || typeof image.src !== "string") throw new Error("image_url needs an image");
  const size = Object.fromEntries(args.filter(Array.isArray));
  const query = ["width", "height", "crop"].filter((k) => k in size).map((k) => `${k}=${size[k]}`).join("&");
  return image.src + (image.src.includes("?") ? "&" : "?") + query;
});

const source = fs.readFileSync(BLOCK, "utf8");
const schema = JSON.parse(source.match(/{%\s*schema\s*%}([\s\S]*?){%\s*endschema\s*%}/)[1]);
const input = JSON.parse(fs.readFileSync(0, "utf8"));
const settings = {};
for (const setting of schema.settings) {
  if ("default" in setting) settings[setting.id] = setting.default;
}
Object.assign(settings, input.settings);
engine.parseAndRender(source, { block: { settings } })
  .then((html) => process.stdout.write(html))
  .catch((error) => { process.stderr.write(String(error) + "\n"); process.exitCode = 1; });
