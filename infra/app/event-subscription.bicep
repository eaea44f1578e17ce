// NetGuard's event subscription on a Microsoft.Resources.Subscriptions system topic: the one NetGuard
// created (events.bicep) or one that already existed in the subscription (Azure allows one such topic
// per subscription; other tools often created it). It delivers the writes NetGuard routes to the
// onResourceEvent function. The event types and the data.operationName values come from
// shared/events/operations.ts through the generated file, so the filter is exactly what the code handles.
param topicName string
param functionAppId string
param deadLetterStorageAccountId string
param deadLetterContainerName string
@description('Dead-letter with the topic\'s own identity. Only NetGuard\'s own topic has one it can rely on; on a topic that already existed, undeliverable events are dropped after the retries (the daily sweep judges every cluster anyway).')
param deadLetterWithTopicIdentity bool

var routed = loadJsonContent('../generated/routed-operations.json')

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: topicName
}

var deadLetter = deadLetterWithTopicIdentity ? {
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
} : {}

resource toNetGuard 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: topic
  name: 'netguard-on-resource-event'
  properties: union({
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
  }, deadLetter)
}
