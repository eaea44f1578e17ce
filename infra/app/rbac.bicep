// Data-plane roles of NetGuard's identity in its own resource group: storage (host + NetGuard state)
// and telemetry. Built-in role ids, checked by test/infra against Microsoft's published names.
param principalId string
param storageAccountName string
param applicationInsightsName string

var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b' // Storage Blob Data Owner
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88' // Storage Queue Data Contributor
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3' // Storage Table Data Contributor
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb' // Monitoring Metrics Publisher

// Why each one:
//  Blob Data Owner         - the Functions host keeps leases and keys in blobs (it also creates
//                            containers), and Flex Consumption reads the deployment package.
//  Queue Data Contributor  - the netguard-sweep queue: the timer sends, sweepSubscription receives.
//  Table Data Contributor  - NetGuard's findings, baselines, approvals and audit tables.
//  Metrics Publisher       - send traces and metrics to Application Insights with Entra ID (no keys).
var storageRoles = [ storageBlobDataOwner, storageQueueDataContributor, storageTableDataContributor ]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource storageAssignments 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for roleId in storageRoles: {
  name: guid(storage.id, principalId, roleId)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}]

resource telemetryAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, principalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}
