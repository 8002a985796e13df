// Package api is DocuVault's HTTP API: upload URLs, confirmation, documents,
// quotas and health. Handlers translate HTTP to the document use cases and
// document error codes back to statuses; nothing else lives here.
package api
