#!/bin/sh
# azd preprovision hook: gets the watched subscriptions ready before Bicep runs.
#  1. A subscription dropped from AKS_NETGUARD_WATCHED_SUBSCRIPTIONS: its role assignment is removed
#     first (Azure refuses to drop a role's assignable scope while an assignment exists there:
#     RoleScopeBeingRemovedContainsAssignments), then NetGuard's events there: its resource group
#     rg-<env>-events, or only its event subscription when it used a topic that was already there.
#  2. Azure allows one Microsoft.Resources.Subscriptions system topic per subscription. Those that
#     already exist (created by another tool) are found with the Azure CLI and handed to Bicep through
#     AKS_NETGUARD_EXISTING_SYSTEM_TOPICS, which then adds only NetGuard's event subscription to them.
# The previous state comes from the last provision's outputs (azd keeps them in the environment).
set -eu

env_name="${AZURE_ENV_NAME:?AZURE_ENV_NAME is not set (run through azd)}"
home="${AZURE_SUBSCRIPTION_ID:?AZURE_SUBSCRIPTION_ID is not set (run through azd)}"
own_topic="evgt-netguard-$env_name"

# A comma list as lower-case lines, blanks dropped.
lines() { printf '%s\n' "$1" | tr ',' '\n' | tr -d ' \t\r' | tr 'A-Z' 'a-z' | grep -v '^$' || true; }
has_line() { printf '%s\n' "$1" | grep -qx "$2"; }

next="$(lines "${AKS_NETGUARD_WATCHED_SUBSCRIPTIONS:-}")"
[ -n "$next" ] || next="$(lines "$home")"
previous="$(lines "${NETGUARD_WATCHED_SUBSCRIPTIONS:-}")"
previous_topics="$(lines "${NETGUARD_EXISTING_SYSTEM_TOPICS:-}")"

for sub in $previous; do
  has_line "$next" "$sub" && continue
  echo "NetGuard: subscription $sub is no longer watched: removing NetGuard's role assignment and events there."
  if [ -n "${NETGUARD_IDENTITY_PRINCIPAL_ID:-}" ] && [ -n "${NETGUARD_ROLE_DEFINITION_NAME:-}" ]; then
    az role assignment delete --assignee "$NETGUARD_IDENTITY_PRINCIPAL_ID" --role "$NETGUARD_ROLE_DEFINITION_NAME" \
      --scope "/subscriptions/$sub" --subscription "$sub" --only-show-errors
  fi
  topic="$(printf '%s\n' "$previous_topics" | grep "^/subscriptions/$sub/" | head -n 1 || true)"
  if [ -n "$topic" ]; then
    # Not NetGuard's topic: only its event subscription goes.
    rg="$(printf '%s' "$topic" | cut -d/ -f5)"
    name="$(printf '%s' "$topic" | cut -d/ -f9)"
    az eventgrid system-topic event-subscription delete --subscription "$sub" --resource-group "$rg" \
      --system-topic-name "$name" --name netguard-on-resource-event --yes --only-show-errors
  elif [ "$(az group exists --subscription "$sub" --name "rg-$env_name-events")" = "true" ]; then
    az group delete --subscription "$sub" --name "rg-$env_name-events" --yes --no-wait --only-show-errors
  fi
done

found=""
for sub in $next; do
  # Listed first, so a failing az (not logged in, no access) stops the provision here.
  listed="$(az eventgrid system-topic list --subscription "$sub" --query "[].[id, topicType, source]" -o tsv --only-show-errors)"
  topic="$(printf '%s\n' "$listed" | awk -F '\t' -v s="/subscriptions/$sub" -v own="$own_topic" '
      tolower($2) == "microsoft.resources.subscriptions" && tolower($3) == s {
        n = split($1, part, "/"); if (tolower(part[n]) != tolower(own)) { print $1; exit }
      }')"
  if [ -n "$topic" ]; then
    echo "NetGuard: subscription $sub already has a system topic ($topic); NetGuard adds its event subscription to it."
    found="${found:+$found,}$topic"
  fi
done
azd env set AKS_NETGUARD_EXISTING_SYSTEM_TOPICS "$found"
