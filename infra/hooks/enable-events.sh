#!/bin/sh
# azd postdeploy hook. Event Grid refuses an event subscription to a function that does not exist yet,
# so the first `azd provision` leaves the subscriptions out; once the code is deployed this turns them
# on and provisions again. Later runs find the setting already on and do nothing.
set -eu
if [ "${AKS_NETGUARD_EVENTS_ENABLED:-false}" != "true" ]; then
  echo "NetGuard: functions deployed; creating the Event Grid subscriptions (second provision)."
  azd env set AKS_NETGUARD_EVENTS_ENABLED true
  azd provision --no-prompt
fi
