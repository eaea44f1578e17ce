// The subscription's Event Grid system topic (Microsoft.Resources.Subscriptions) and the event
// subscription that delivers the writes NetGuard routes to the onResourceEvent function. The event
// types and the data.operationName values come from shared/events/operations.ts through the
// generated file, so the filter is exactly what the code handles.
param topicName string
param tags object
param functionAppId string
param deadLetterStorageAccountId string
param deadLetterContainerName string
param eventsEnabled bool
@description('Log Analytics workspace that receives delivery failures and dead-letter counts.')
param logAnalyticsWorkspaceId string

var routed = loadJsonContent('../generated/routed-operations.json')

// Azure allows one system topic per source: a subscription that already has one for
// Microsoft.Resources.Subscriptions needs it removed or reused (docs/deploy.md).
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

resource toNetGuard 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = if (eventsEnabled) {
  parent: topic
  name: 'netguard-on-resource-event'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/onResourceEvent'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: routed.eventTypes
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.operationName'
          values: routed.operationNames
        }
      ]
    }
    // Events are hints (NetGuard re-reads the resource), so a day of retries is plenty; what still
    // fails is kept in the dead-letter container for the on-call person (docs/operate.md).
    retryPolicy: {
      maxDeliveryAttempts: 10
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: { type: 'SystemAssigned' }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
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
