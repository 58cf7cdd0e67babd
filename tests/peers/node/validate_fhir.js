// Validates FHIR R4 resources with the npm `fhir` package (an implementation independent of
// Conduit's fhir.resources models). Usage: node validate_fhir.js FILE.json
// FILE holds a JSON array of resources (Bundles); prints a JSON array, one entry per resource:
// {"valid": bool, "errors": ["<location>: <message>", ...]} (severity "error" only).
"use strict";
const fs = require("fs");
const { Fhir } = require("fhir");

const fhir = new Fhir();
const resources = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const out = resources.map((resource) => {
  const result = fhir.validate(resource, { errorOnUnexpected: true });
  const errors = result.messages
    .filter((m) => m.severity === "error")
    .map((m) => `${m.location}: ${m.message}`);
  return { valid: errors.length === 0, errors };
});
process.stdout.write(JSON.stringify(out));
