#!/usr/bin/env bash
# `make redrive`: replays each function's failed-events queue on AWS, after the cause of the failures is fixed.
#
# For each function: finds its redrive mapping (the SQS event source mapping from its failed-events queue, created
# disabled by the CDK stack), enables it, waits while Lambda's poller feeds the queue's destination records back to
# the function (which unwraps each `requestPayload` and reports the records that fail again, so they stay in the
# queue), and disables the mapping again once the queue is empty, or once it has stopped shrinking for
# REDRIVE_STALL_SECONDS (the records left fail again: the cause is not fixed). The mapping is disabled on every way
# out, Ctrl-C included, so live failures are never replayed behind the operator's back.
#
# Environment:
#   FUNCTIONS               the functions to redrive (default: disconnect-recorder shadow-reconciler)
#   REDRIVE_POLL_SECONDS    between two looks at the queue (default 10)
#   REDRIVE_STALL_SECONDS   how long the queue may stay the same size before giving up (default 300; the queues'
#                           visibility timeout is 6x the function timeout, so a record that failed again shows
#                           up again only after that)
#   AWS                     the AWS CLI command (default: aws), e.g. "aws --profile ops"
#   AWS_*                   the AWS CLI's usual settings (profile, region)
#
# Exit status: 0 when every queue was emptied (or was empty), 1 when records are left (each function's logs say
# why), 2 when a function has no redrive mapping (is the stack deployed?).
set -euo pipefail

FUNCTIONS="${FUNCTIONS:-disconnect-recorder shadow-reconciler}"
POLL="${REDRIVE_POLL_SECONDS:-10}"
STALL="${REDRIVE_STALL_SECONDS:-300}"
AWS="${AWS:-aws}"

enabled_mapping=""
disable() {
  if [[ -n "$enabled_mapping" ]]; then
    $AWS lambda update-event-source-mapping --uuid "$enabled_mapping" --no-enabled --output text \
      --query State >/dev/null && echo "   mapping $enabled_mapping disabled"
    enabled_mapping=""
  fi
}
trap disable EXIT
trap 'echo "interrupted"; exit 130' INT TERM

# Messages in the queue: waiting plus in flight (being replayed right now).
depth() {
  $AWS sqs get-queue-attributes --queue-url "$1" \
    --attribute-names ApproximateNumberOfMessages ApproximateNumberOfMessagesNotVisible \
    --query 'Attributes.[ApproximateNumberOfMessages, ApproximateNumberOfMessagesNotVisible]' --output text |
    awk '{ print $1 + $2 }'
}

left_over=0
for function in $FUNCTIONS; do
  uuid="" queue_arn=""
  read -r uuid queue_arn < <($AWS lambda list-event-source-mappings --function-name "$function" --output text \
    --query "EventSourceMappings[?starts_with(EventSourceArn, 'arn:aws:sqs:')] | [0].[UUID, EventSourceArn]") || true
  if [[ -z "${uuid:-}" || "$uuid" == None ]]; then
    echo "error: $function has no SQS redrive mapping; deploy the stack (make deploy) first" >&2
    exit 2
  fi
  queue_url=$($AWS sqs get-queue-url --queue-name "${queue_arn##*:}" \
    --queue-owner-aws-account-id "$(cut -d: -f5 <<<"$queue_arn")" --query QueueUrl --output text)
  count=$(depth "$queue_url")
  echo "== $function: $count failed events in ${queue_arn##*:}"
  if [[ "$count" -eq 0 ]]; then
    continue
  fi
  $AWS lambda update-event-source-mapping --uuid "$uuid" --enabled --output text --query State >/dev/null
  enabled_mapping="$uuid"
  echo "   mapping $uuid enabled: replaying"
  smallest=$count
  since=$SECONDS
  zero_seen=0
  while true; do
    sleep "$POLL"
    count=$(depth "$queue_url")
    if [[ "$count" -eq 0 ]]; then
      # The counts are approximate: empty twice in a row before calling it done.
      zero_seen=$((zero_seen + 1))
      if [[ "$zero_seen" -ge 2 ]]; then
        echo "   $function: every failed event replayed"
        break
      fi
      continue
    fi
    zero_seen=0
    if [[ "$count" -lt "$smallest" ]]; then
      smallest=$count
      since=$SECONDS
    fi
    echo "   $count left ($((SECONDS - since)) s without progress)"
    if (( SECONDS - since >= STALL )); then
      echo "   $function: $count events still fail after ${STALL} s; they stay in the queue." \
        "Read /aws/lambda/$function for the error, fix it, and run make redrive again" >&2
      left_over=$((left_over + count))
      break
    fi
  done
  disable
done

if [[ "$left_over" -gt 0 ]]; then
  exit 1
fi
