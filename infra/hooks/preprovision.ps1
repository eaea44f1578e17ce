# azd preprovision hook (Windows). Same as preprovision.sh:
#  1. A subscription dropped from AKS_NETGUARD_WATCHED_SUBSCRIPTIONS: its role assignment is removed
#     first (Azure refuses to drop a role's assignable scope while an assignment exists there:
#     RoleScopeBeingRemovedContainsAssignments), then NetGuard's events there.
#  2. Existing Microsoft.Resources.Subscriptions system topics (one per subscription at most) are found
#     with the Azure CLI and handed to Bicep through AKS_NETGUARD_EXISTING_SYSTEM_TOPICS.
$ErrorActionPreference = 'Stop'

function Get-Lines([string]$value) {
  @(($value -split ',') | ForEach-Object { $_.Trim().ToLowerInvariant() } | Where-Object { $_ })
}
function Invoke-Az {
  $out = & az @args
  if ($LASTEXITCODE -ne 0) { throw "az $($args -join ' ') failed ($LASTEXITCODE)" }
  $out
}

$envName = $env:AZURE_ENV_NAME
$homeSub = $env:AZURE_SUBSCRIPTION_ID
if (-not $envName -or -not $homeSub) { throw 'AZURE_ENV_NAME and AZURE_SUBSCRIPTION_ID must be set (run through azd).' }
$ownTopic = "evgt-netguard-$envName"

$next = Get-Lines $env:AKS_NETGUARD_WATCHED_SUBSCRIPTIONS
if ($next.Count -eq 0) { $next = Get-Lines $homeSub }
$previous = Get-Lines $env:NETGUARD_WATCHED_SUBSCRIPTIONS
$previousTopics = Get-Lines $env:NETGUARD_EXISTING_SYSTEM_TOPICS

foreach ($sub in $previous) {
  if ($next -contains $sub) { continue }
  Write-Host "NetGuard: subscription $sub is no longer watched: removing NetGuard's role assignment and events there."
  if ($env:NETGUARD_IDENTITY_PRINCIPAL_ID -and $env:NETGUARD_ROLE_DEFINITION_NAME) {
    Invoke-Az role assignment delete --assignee $env:NETGUARD_IDENTITY_PRINCIPAL_ID --role $env:NETGUARD_ROLE_DEFINITION_NAME `
      --scope "/subscriptions/$sub" --subscription $sub --only-show-errors | Out-Null
  }
  $topic = $previousTopics | Where-Object { $_.StartsWith("/subscriptions/$sub/") } | Select-Object -First 1
  if ($topic) {
    $parts = $topic -split '/'
    Invoke-Az eventgrid system-topic event-subscription delete --subscription $sub --resource-group $parts[4] `
      --system-topic-name $parts[8] --name netguard-on-resource-event --yes --only-show-errors | Out-Null
  }
  elseif ((Invoke-Az group exists --subscription $sub --name "rg-$envName-events") -eq 'true') {
    Invoke-Az group delete --subscription $sub --name "rg-$envName-events" --yes --no-wait --only-show-errors | Out-Null
  }
}

$found = @()
foreach ($sub in $next) {
  $listed = Invoke-Az eventgrid system-topic list --subscription $sub --query '[].[id, topicType, source]' -o tsv --only-show-errors
  foreach ($line in @($listed)) {
    if (-not $line) { continue }
    $id, $type, $source = $line -split "`t"
    if ($type -ieq 'Microsoft.Resources.Subscriptions' -and $source -ieq "/subscriptions/$sub" -and ($id -split '/')[-1] -ine $ownTopic) {
      Write-Host "NetGuard: subscription $sub already has a system topic ($id); NetGuard adds its event subscription to it."
      $found += $id
      break
    }
  }
}
azd env set AKS_NETGUARD_EXISTING_SYSTEM_TOPICS ($found -join ',')
exit $LASTEXITCODE
