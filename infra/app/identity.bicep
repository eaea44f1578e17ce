// NetGuard's own identity: one user-assigned managed identity for the Function App (ARM, storage,
// telemetry) and the Teams bot. It holds write access to network security, so nothing else uses it.
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
