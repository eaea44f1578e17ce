# azd postdeploy hook (Windows). Same as enable-events.sh: Event Grid refuses an event subscription to a
# function that does not exist yet, so the subscriptions are created by a second provision after deploy.
$ErrorActionPreference = 'Stop'
if ($env:AKS_NETGUARD_EVENTS_ENABLED -ne 'true') {
  Write-Host 'NetGuard: functions deployed; creating the Event Grid subscriptions (second provision).'
  azd env set AKS_NETGUARD_EVENTS_ENABLED true
  if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
  azd provision --no-prompt
  exit $LASTEXITCODE
}
