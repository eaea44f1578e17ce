// The Teams bot: an Azure Bot registered to NetGuard's user-assigned identity (single tenant, no app
// password), its messaging endpoint at the Function App's /api/messages, and the Teams channel.
param name string
param tags object
@allowed([ 'F0', 'S1' ])
param sku string
param messagingEndpoint string
param identityId string
param identityClientId string

resource bot 'Microsoft.BotService/botServices@2022-09-15' = {
  name: name
  location: 'global'
  tags: tags
  kind: 'azurebot'
  sku: { name: sku }
  properties: {
    displayName: 'AKS NetGuard'
    description: 'Asks for approval before NetGuard repairs AKS network drift, and tells you what it did.'
    endpoint: messagingEndpoint
    msaAppType: 'UserAssignedMSI'
    msaAppId: identityClientId
    msaAppMSIResourceId: identityId
    msaAppTenantId: tenant().tenantId
  }
}

resource teams 'Microsoft.BotService/botServices/channels@2022-09-15' = {
  parent: bot
  name: 'MsTeamsChannel'
  location: 'global'
  properties: {
    channelName: 'MsTeamsChannel'
    properties: {
      isEnabled: true
    }
  }
}

output name string = bot.name
output appId string = identityClientId
