// Validates an OpenAPI document with @apidevtools/swagger-parser (installed by tools/setup.sh
// into build-node/node_modules): `node openapi_validate.js DOC.json`; exit 0 when valid, 1 with
// the validator's message otherwise.
const path = require("path");
const modules = path.join(__dirname, "..", "..", "build-node", "node_modules");
const SwaggerParser = require(path.join(modules, "@apidevtools", "swagger-parser"));

SwaggerParser.validate(process.argv[2])
  .then((api) => {
    console.log(`valid: ${api.info.title} ${api.info.version}, ${Object.keys(api.paths).length} paths`);
  })
  .catch((err) => {
    console.error(String(err.message || err));
    process.exit(1);
  });
