// Parses an AsyncAPI document with the official parser (@asyncapi/parser, its default rules) and prints
// every diagnostic as one JSON line: {"severity": "error"|"warning"|"info"|"hint", "code", "message", "path"}.
// Exit status 1 when any is an error (or the document could not be parsed at all), else 0.
// Usage: NODE_PATH=<dir of node_modules> node validate.cjs docs/asyncapi.json
"use strict";
const fs = require("fs");
const { Parser } = require("@asyncapi/parser");

const SEVERITIES = ["error", "warning", "info", "hint"];

async function main(file) {
  const text = fs.readFileSync(file, "utf8");
  const { document, diagnostics } = await new Parser().parse(text, { source: file });
  let errors = 0;
  for (const d of diagnostics) {
    const severity = SEVERITIES[d.severity] || String(d.severity);
    if (severity === "error") errors += 1;
    console.log(JSON.stringify({ severity, code: d.code, message: d.message, path: (d.path || []).join("/") }));
  }
  if (!document) {
    console.log(JSON.stringify({ severity: "error", code: "not-parsed", message: "the parser returned no document", path: "" }));
    errors += 1;
  } else {
    console.log(JSON.stringify({ severity: "summary", version: document.version(),
      channels: document.channels().length, operations: document.operations().length,
      messages: document.allMessages().length }));
  }
  return errors ? 1 : 0;
}

main(process.argv[2]).then((status) => process.exit(status), (error) => {
  console.log(JSON.stringify({ severity: "error", code: "crashed", message: String(error && error.stack || error), path: "" }));
  process.exit(1);
});
