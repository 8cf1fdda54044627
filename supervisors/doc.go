// Package supervisors is the OTP supervisor layer that protoactor-go lacks.
//
// A supervisor is a protoactor actor (built by [New]) that starts a list of children from [ChildSpec]s
// one by one, in order, each child's *actor.Started handler finished before the next child is spawned,
// and stops them in reverse order, each given its own shutdown timeout. When a child exits it is
// restarted according to its [RestartType] (permanent, transient, temporary) and the supervisor's
// [Strategy] (one_for_one, one_for_all, rest_for_one), under a restart intensity that is counted per
// supervisor (at most MaxRestarts restarts within Window). A supervisor that exceeds it stops its
// children and either calls Spec.OnGiveUp and stops, or fails to its own parent — a parent supervisor
// treats that as a crashed child.
//
// What it makes up for in protoactor (measured, see DESIGN.md §1):
//   - protoactor's Children() is not in start order; the supervisor keeps its own ordered list.
//   - protoactor's restart limits are per child and exceeding them only stops that child; here intensity
//     is per supervisor and exceeding it fails the supervisor.
//   - protoactor has no restart types and Terminated carries no exit reason; here a child exits with a
//     reason: a panic is abnormal, stopping itself is normal, [Exit] names the reason.
//   - protoactor starts children concurrently and stops them in parallel without timeouts; here start is
//     sequential and acknowledged, stop is sequential in reverse order with a per-child timeout.
//   - protoactor restarts a failed actor in place; here a failed child is stopped (its Stopping and
//     Stopped handlers run) and spawned again under the same name, so its PID stays the same.
//
// A restart is a stop and a new spawn under the same name: watchers of the child receive Terminated at
// each restart, and a Watch must be renewed once the child is back (the PID itself keeps working). The
// supervisor answers requests only after its Started handler, so its first reply (for example to
// [WhichChildren]) means every initial child has started. A child that does not stop within its
// timeouts cannot be interrupted (protoactor has no way to); the supervisor leaves it behind, logs it,
// and does not wait for it to finish its own stop, but the child's name stays taken until it returns.
//
// The supervisor is synchronous like an OTP supervisor: while it starts or stops a child it waits for
// that child and does not process other messages. A child must therefore not wait for its own supervisor
// (for example with RequestFuture(...).Result()) inside its Started or Stopping handler; the wait ends
// only when the supervisor's start or stop timeout expires.
package supervisors
