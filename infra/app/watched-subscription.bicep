// Everything NetGuard needs in one watched subscription: its custom role, assigned at the subscription,
// and a resource group holding the Event Grid system topic that reports the subscription's writes.
targetScope = 'subscription'

param environmentName string
param tags object
@description('Name (GUID) of the NetGuard custom role definition.')
param roleDefinitionName string
param principalId string
param functionAppId string
param deadLetterStorageAccountId string
param deadLetterContainerName string
param eventsEnabled bool
param logAnalyticsWorkspaceId string

resource netguardAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, roleDefinitionName)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionName)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'AKS NetGuard: read clusters, NSGs and VNets; write security rules and managed clusters.'
  }
}

resource eventsGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}-events'
  location: deployment().location
  tags: tags
}

module events 'events.bicep' = {
  name: 'netguard-events'
  scope: eventsGroup
  params: {
    topicName: 'evgt-netguard-${environmentName}'
    tags: tags
    functionAppId: functionAppId
    deadLetterStorageAccountId: deadLetterStorageAccountId
    deadLetterContainerName: deadLetterContainerName
    eventsEnabled: eventsEnabled
    logAnalyticsWorkspaceId: logAnalyticsWorkspaceId
  }
}

output systemTopicPrincipalId string = events.outputs.principalId
