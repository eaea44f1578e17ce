// The subscription's Event Grid system topic (Microsoft.Resources.Subscriptions), created by NetGuard
// when the subscription has none (watched-subscription.bicep decides), with its diagnostics and
// NetGuard's event subscription (event-subscription.bicep).
param topicName string
param tags object
param functionAppId string
param deadLetterStorageAccountId string
param deadLetterContainerName string
param eventsEnabled bool
@description('Log Analytics workspace that receives delivery failures and dead-letter counts.')
param logAnalyticsWorkspaceId string

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: topicName
  location: 'global'
  tags: tags
  identity: { type: 'SystemAssigned' } // used only to write dead letters
  properties: {
    source: subscription().id
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

module eventSubscription 'event-subscription.bicep' = if (eventsEnabled) {
  name: 'netguard-event-subscription'
  params: {
    topicName: topic.name
    functionAppId: functionAppId
    deadLetterStorageAccountId: deadLetterStorageAccountId
    deadLetterContainerName: deadLetterContainerName
    deadLetterWithTopicIdentity: true
  }
}

// Delivery failures (AEGDeliveryFailureLogs) and metrics such as DeadLetteredCount (AzureMetrics) go to
// NetGuard's workspace, where docs/operate.md queries them.
resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'netguard-events'
  scope: topic
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logAnalyticsDestinationType: 'Dedicated'
    logs: [
      { categoryGroup: 'allLogs', enabled: true }
    ]
    metrics: [
      { category: 'AllMetrics', enabled: true }
    ]
  }
}

output principalId string = topic.identity.principalId
