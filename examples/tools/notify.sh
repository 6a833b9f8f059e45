#!/bin/sh
# The runbooks' communication templates, posted where the team reads them. Here: printed (the
# output is stored with the deployment: `runway logs --deployment ID`), and appended to
# $NOTIFY_LOG when it is set. Replace the printf with your chat webhook.
set -eu
case "$RUNWAY_PHASE" in
pre-deploy) msg="DEPLOYMENT STARTED: $RUNWAY_SERVICE ${RUNWAY_PREVIOUS_VERSION:-(first release)} -> $RUNWAY_VERSION (deployment #$RUNWAY_DEPLOYMENT_ID)" ;;
post-deploy) msg="DEPLOYMENT COMPLETE: $RUNWAY_SERVICE $RUNWAY_VERSION serves all traffic" ;;
on-failure) msg="DEPLOYMENT FAILED: $RUNWAY_SERVICE $RUNWAY_VERSION; rolling back to ${RUNWAY_PREVIOUS_VERSION:-nothing}" ;;
post-rollback) msg="DEPLOYMENT ROLLED BACK: $RUNWAY_SERVICE ${RUNWAY_PREVIOUS_VERSION:-?} -> $RUNWAY_VERSION restored" ;;
*) msg="$RUNWAY_PHASE: $RUNWAY_SERVICE $RUNWAY_VERSION" ;;
esac
printf '%s\n' "$msg"
if [ -n "${NOTIFY_LOG:-}" ]; then
    printf '%s\n' "$msg" >> "$NOTIFY_LOG"
fi
