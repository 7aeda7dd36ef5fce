# Sourced by .ci/run: `step NAME` starts a timed step (ending the one before), `step_done` ends the
# last; on exit, success or failure, a table of the steps' wall times goes to stdout.
# `set -e` does not stop at a failure inside an `a && b && c` line (the README's commands are such
# lines), so `step` and `step_done` first exit with the status of the command before them if it failed.
ci_steps=()
ci_times=()
ci_current=""
ci_started=0
ci_begin=$(date +%s)

step_done() {
  local status=$?
  if [ "$status" -ne 0 ]; then exit "$status"; fi
  if [ -n "$ci_current" ]; then
    ci_steps+=("$ci_current")
    ci_times+=($(($(date +%s) - ci_started)))
    ci_current=""
  fi
}

step() {
  local status=$?
  if [ "$status" -ne 0 ]; then exit "$status"; fi
  step_done
  ci_current=$1
  ci_started=$(date +%s)
  echo "==== $1 ($(date -u +%H:%M:%S) UTC)"
}

ci_summary() {
  local status=$?
  local failed=$ci_current
  true
  step_done
  echo
  echo "==== CI step times"
  local i
  for i in "${!ci_steps[@]}"; do
    awk -v s="${ci_times[$i]}" -v name="${ci_steps[$i]}" 'BEGIN { printf "%6d s  %5.1f min  %s\n", s, s / 60, name }'
  done
  local total=$(($(date +%s) - ci_begin))
  awk -v s="$total" 'BEGIN { printf "%6d s  %5.1f min  total\n", s, s / 60 }'
  if [ "$status" -ne 0 ]; then echo "FAILED (exit $status) in: ${failed:-?}"; fi
  return "$status"
}
trap ci_summary EXIT
