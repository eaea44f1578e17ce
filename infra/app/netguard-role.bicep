// NetGuard's custom role: exactly the actions and Kubernetes data actions in shared/azure/permissions.ts
// (NETGUARD_ROLE_ACTIONS, NETGUARD_ROLE_DATA_ACTIONS, added up from what the controls declare),
// read from the generated file so the code and the role cannot drift apart (test/infra checks it).
targetScope = 'subscription'

@description('Must be unique in the tenant.')
param roleName string
@description('Subscriptions where the role may be assigned.')
param assignableSubscriptionIds array

var role = loadJsonContent('../generated/netguard-role.json')

resource netguardRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(tenant().tenantId, 'aks-netguard-role', roleName)
  properties: {
    roleName: roleName
    description: role.description
    type: 'CustomRole'
    permissions: [
      {
        actions: role.actions
        notActions: []
        dataActions: role.dataActions
        notDataActions: []
      }
    ]
    assignableScopes: [for id in assignableSubscriptionIds: '/subscriptions/${id}']
  }
}

output roleDefinitionName string = netguardRole.name
