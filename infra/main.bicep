// AKS NetGuard: everything `azd up` creates. Subscription scope, because NetGuard is granted its role
// and gets its Event Grid system topic in every watched subscription, not only in its own.
targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('azd environment name; names and tags every resource.')
param environmentName string

// Only regions where Azure Functions offers the Flex Consumption plan (FC1), so azd cannot offer one
// where the deployment would fail. The list is Microsoft's own (the Flex Consumption azd quickstart
// templates); `az functionapp list-flexconsumption-locations` prints the current one.
@minLength(1)
@description('Region of the Function App, storage and monitoring (the bot and system topics are global). Only regions with Flex Consumption.')
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Comma list of subscription ids NetGuard watches and may repair. Empty: only the subscription deployed to.')
param watchedSubscriptions string = ''

@description('Comma list of resource ids of Microsoft.Resources.Subscriptions system topics that already exist in watched subscriptions (Azure allows one per subscription). NetGuard adds only its event subscription to those. The preprovision hook fills it (AKS_NETGUARD_EXISTING_SYSTEM_TOPICS).')
param existingSystemTopics string = ''

@allowed([ 'report', 'approve', 'auto' ])
@description('AKS_NETGUARD_MODE. Start with report: NetGuard only records what it would do.')
param netguardMode string = 'report'

@description('Per-control modes, e.g. { "node-ssh-deny": "auto" } (AKS_NETGUARD_MODE_<ID>); unset controls use their default.')
param controlModes object = {}

@description('AKS_NETGUARD_AUTHORIZED_IP_RANGES: comma list of CIDRs restored when a cluster has no known-good ranges.')
param authorizedIpRanges string = ''

@description('AKS_NETGUARD_APPROVERS: comma list of Entra object ids allowed to approve in Teams. Empty: nobody can.')
param approvers string = ''

@minValue(0)
param maxWritesPerRun int = 20

@description('NCRONTAB schedule of the daily sweep (AKS_NETGUARD_SWEEP_SCHEDULE), in UTC.')
param sweepSchedule string = '0 0 6 * * *'

@minValue(1)
param flapCount int = 3

@minValue(1)
param flapWindowMinutes int = 60

@minValue(1)
param approvalTtlHours int = 24

// 22 by default: the Azure SDK packages NetGuard uses declare Node >= 22 (they run on 20 today).
@allowed([ '20', '22' ])
param nodeVersion string = '22'

@allowed([ 'F0', 'S1' ])
@description('Azure Bot pricing tier; Teams is a standard channel, free on F0.')
param botSku string = 'F0'

@allowed([ 'true', 'false' ])
@description('Create the Event Grid event subscriptions. Event Grid checks that onResourceEvent exists, so the first provision (before any code is deployed) leaves them out; the postdeploy hook turns this on and provisions again.')
param eventsEnabled string = 'false'

var tags = { 'azd-env-name': environmentName, application: 'aks-netguard' }
var token = toLower(uniqueString(subscription().id, environmentName, location))
var homeSubscriptionId = subscription().subscriptionId
var watched = empty(trim(watchedSubscriptions)) ? [ homeSubscriptionId ] : map(filter(split(watchedSubscriptions, ','), s => !empty(trim(s))), s => trim(s))
var deadLetterContainerName = 'netguard-deadletter'
var existingTopicIds = filter(map(split(existingSystemTopics, ','), t => trim(t)), t => !empty(t))
// Subscriptions whose system topic already existed: no NetGuard topic identity to grant there.
var subscriptionsWithExistingTopic = map(existingTopicIds, t => toLower(split(t, '/')[2]))

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'netguard-identity'
  scope: rg
  params: {
    name: 'id-netguard-${token}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'netguard-monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-netguard-${token}'
    applicationInsightsName: 'appi-netguard-${token}'
    location: location
    tags: tags
  }
}

module storage 'app/storage.bicep' = {
  name: 'netguard-storage'
  scope: rg
  params: {
    name: take('stnetguard${token}', 24)
    location: location
    tags: tags
    deploymentContainerName: 'app-package-${token}'
    deadLetterContainerName: deadLetterContainerName
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'netguard-rbac'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
  }
}

module functionApp 'app/function.bicep' = {
  name: 'netguard-function'
  scope: rg
  params: {
    name: 'func-netguard-${token}'
    planName: 'plan-netguard-${token}'
    location: location
    tags: tags
    nodeVersion: nodeVersion
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    identityPrincipalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    deploymentContainerUrl: '${storage.outputs.blobEndpoint}${storage.outputs.deploymentContainerName}'
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    watchedSubscriptionIds: watched
    netguardMode: netguardMode
    controlModes: controlModes
    authorizedIpRanges: authorizedIpRanges
    approvers: approvers
    maxWritesPerRun: maxWritesPerRun
    sweepSchedule: sweepSchedule
    flapCount: flapCount
    flapWindowMinutes: flapWindowMinutes
    approvalTtlHours: approvalTtlHours
  }
  // The host needs its storage and telemetry roles before it starts.
  dependsOn: [ rbac ]
}

module bot 'app/bot.bicep' = {
  name: 'netguard-bot'
  scope: rg
  params: {
    name: 'bot-netguard-${token}'
    tags: tags
    sku: botSku
    messagingEndpoint: 'https://${functionApp.outputs.defaultHostName}/api/messages'
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
  }
}

// One custom role, defined in the home subscription and assignable in every watched one.
module netguardRole 'app/netguard-role.bicep' = {
  name: 'netguard-role'
  params: {
    roleName: 'AKS NetGuard (${environmentName})'
    assignableSubscriptionIds: union([ homeSubscriptionId ], watched)
  }
}

module watchedSubscription 'app/watched-subscription.bicep' = [for subscriptionId in watched: {
  name: 'netguard-watch-${take(uniqueString(subscriptionId), 8)}'
  scope: subscription(subscriptionId)
  params: {
    environmentName: environmentName
    tags: tags
    roleDefinitionName: netguardRole.outputs.roleDefinitionName
    principalId: identity.outputs.principalId
    functionAppId: functionApp.outputs.id
    deadLetterStorageAccountId: storage.outputs.id
    deadLetterContainerName: deadLetterContainerName
    eventsEnabled: eventsEnabled == 'true'
    logAnalyticsWorkspaceId: monitoring.outputs.workspaceId
    existingSystemTopicIds: existingTopicIds
  }
}]

// Each system topic dead-letters with its own identity, allowed to write to the dead-letter container only.
module deadLetterAccess 'app/deadletter-access.bicep' = [for (subscriptionId, i) in watched: if (!contains(subscriptionsWithExistingTopic, toLower(subscriptionId))) {
  name: 'netguard-deadletter-${take(uniqueString(subscriptionId), 8)}'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    containerName: deadLetterContainerName
    principalId: watchedSubscription[i].outputs.systemTopicPrincipalId
  }
}]

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output NETGUARD_FUNCTION_APP_HOST string = functionApp.outputs.defaultHostName
output NETGUARD_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output NETGUARD_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output NETGUARD_BOT_NAME string = bot.outputs.name
output NETGUARD_STORAGE_ACCOUNT string = storage.outputs.name
output NETGUARD_ROLE_DEFINITION_NAME string = netguardRole.outputs.roleDefinitionName
// The preprovision hook compares the next list with this one to remove what a dropped subscription had.
output NETGUARD_WATCHED_SUBSCRIPTIONS string = join(watched, ',')
output NETGUARD_EXISTING_SYSTEM_TOPICS string = join(existingTopicIds, ',')
