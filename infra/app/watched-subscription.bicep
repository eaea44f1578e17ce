// Everything NetGuard needs in one watched subscription: its custom role, assigned at the subscription,
// and the Event Grid system topic that reports the subscription's writes. Azure allows ONE
// Microsoft.Resources.Subscriptions system topic per subscription: when the subscription already has
// one (the preprovision hook finds it with the Azure CLI, or you list it in
// AKS_NETGUARD_EXISTING_SYSTEM_TOPICS), only NetGuard's event subscription is added to that topic;
// otherwise NetGuard creates the topic in rg-<env>-events.
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
@description('Resource ids of Microsoft.Resources.Subscriptions system topics that already exist (any subscription; the one of this subscription is used).')
param existingSystemTopicIds array = []

var existingHere = filter(existingSystemTopicIds, id => toLower(split(id, '/')[2]) == toLower(subscription().subscriptionId))
var existingTopicId = empty(existingHere) ? '' : existingHere[0]
// Names read from that id; when there is none they are never used, but stay valid expressions.
var existingTopicGroup = empty(existingTopicId) ? 'rg-${environmentName}-events' : split(existingTopicId, '/')[4]
var existingTopicName = empty(existingTopicId) ? 'evgt-netguard-${environmentName}' : last(split(existingTopicId, '/'))

resource netguardAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, roleDefinitionName)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionName)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'AKS NetGuard: read clusters, NSGs and VNets; write security rules and managed clusters.'
  }
}

resource eventsGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = if (empty(existingTopicId)) {
  name: 'rg-${environmentName}-events'
  location: deployment().location
  tags: tags
}

module events 'events.bicep' = if (empty(existingTopicId)) {
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

// The topic that was already there: only NetGuard's event subscription is added (the topic, its
// identity and its diagnostics belong to whoever created it).
module eventsOnExistingTopic 'event-subscription.bicep' = if (!empty(existingTopicId) && eventsEnabled) {
  name: 'netguard-event-subscription'
  scope: resourceGroup(existingTopicGroup)
  params: {
    topicName: existingTopicName
    functionAppId: functionAppId
    deadLetterStorageAccountId: deadLetterStorageAccountId
    deadLetterContainerName: deadLetterContainerName
    deadLetterWithTopicIdentity: false
  }
}

output systemTopicPrincipalId string = empty(existingTopicId) ? events.outputs.principalId : ''
output usesExistingTopic bool = !empty(existingTopicId)
