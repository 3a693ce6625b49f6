// Starts Swagger UI on this service's OpenAPI description. A file, not an inline script: the
// page's Content-Security-Policy allows scripts from this origin only.
"use strict";
window.ui = SwaggerUIBundle({
  url: new URL("openapi.json", document.baseURI).href,
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null, // the online validator would be a request to another host
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout",
  persistAuthorization: false, // the bearer token stays in memory, not in localStorage
});
