// The Function App on the Flex Consumption plan (Linux, Functions v4, Node). No keys or connection
// strings anywhere: storage, ARM, telemetry and the bot all use the user-assigned identity.
param name string
param planName string
param location string
param tags object
@allowed([ '20', '22' ])
param nodeVersion string
param identityId string
param identityClientId string
param identityPrincipalId string
param storageAccountName string
param deploymentContainerUrl string
param applicationInsightsConnectionString string
param watchedSubscriptionIds array
param netguardMode string
param controlModes object
param authorizedIpRanges string
param approvers string
param maxWritesPerRun int
param sweepSchedule string
param flapCount int
param flapWindowMinutes int
param approvalTtlHours int

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true // Linux
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': 'netguard' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: 40
        instanceMemoryMB: 2048
      }
      runtime: {
        name: 'node'
        version: nodeVersion
      }
    }
  }
}

// Publishing with user names and passwords stays off; azd deploys with Entra ID.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: { allow: false }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: { allow: false }
}

// Every setting NetGuard reads (shared/config.ts SETTING_NAMES; test/infra checks this list).
// AzureWebJobsStorage itself is replaced by its identity-based form; MicrosoftAppPassword is not
// needed because the bot authenticates with the managed identity.
resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: app
  name: 'appsettings'
  properties: {
    AzureWebJobsStorage__accountName: storageAccountName
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identityClientId
    APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsightsConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identityClientId};Authorization=AAD'
    // DefaultAzureCredential picks the user-assigned identity for ARM by this client id.
    AZURE_CLIENT_ID: identityClientId
    AKS_NETGUARD_ARM_ENDPOINT: environment().resourceManager
    AKS_NETGUARD_SUBSCRIPTIONS: join(watchedSubscriptionIds, ',')
    AKS_NETGUARD_MODE: netguardMode
    AKS_NETGUARD_MODE_NODE_SSH_DENY: controlModes[?'node-ssh-deny'] ?? ''
    AKS_NETGUARD_MODE_API_AUTHORIZED_RANGES: controlModes[?'api-authorized-ranges'] ?? ''
    AKS_NETGUARD_MODE_HTTP_APPLICATION_ROUTING: controlModes[?'http-application-routing'] ?? ''
    AKS_NETGUARD_MODE_INSTANCE_METADATA: controlModes[?'instance-metadata'] ?? ''
    AKS_NETGUARD_MODE_NETWORK_POLICY: controlModes[?'network-policy'] ?? ''
    AKS_NETGUARD_MODE_EGRESS_LOCKDOWN: controlModes[?'egress-lockdown'] ?? ''
    AKS_NETGUARD_MODE_SERVICE_MESH: controlModes[?'service-mesh'] ?? ''
    AKS_NETGUARD_AUTHORIZED_IP_RANGES: authorizedIpRanges
    // Namespaces instance-metadata does not judge (the system namespaces, as DESIGN.md's default).
    AKS_NETGUARD_IMDS_EXCLUDED_NAMESPACES: 'kube-system,kube-public,kube-node-lease'
    // NetGuard's own writes come back as events; with its principal id they are skipped unread.
    AKS_NETGUARD_PRINCIPAL_ID: identityPrincipalId
    AKS_NETGUARD_MAX_WRITES_PER_RUN: string(maxWritesPerRun)
    AKS_NETGUARD_APPROVERS: approvers
    AKS_NETGUARD_SWEEP_SCHEDULE: sweepSchedule
    AKS_NETGUARD_FLAP_COUNT: string(flapCount)
    AKS_NETGUARD_FLAP_WINDOW_MINUTES: string(flapWindowMinutes)
    AKS_NETGUARD_APPROVAL_TTL_HOURS: string(approvalTtlHours)
    // Each try of each ARM request ends after this many seconds (a transient failure, retried).
    AKS_NETGUARD_ARM_TIMEOUT_SECONDS: '30'
    MicrosoftAppType: 'UserAssignedMSI'
    MicrosoftAppId: identityClientId
    MicrosoftAppTenantId: tenant().tenantId
  }
}

output id string = app.id
output name string = app.name
output defaultHostName string = app.properties.defaultHostName
