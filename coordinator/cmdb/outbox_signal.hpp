// A process-wide bell rung when a message is queued in the CMDB outbox, so
// the delivery worker (delivery.hpp) sends it at once instead of at its next
// timer tick. Ring it once the message is committed
// (Transaction::AfterCommit, store.hpp): the worker reads on its own session
// and sees only committed work, so a bell rung inside the transaction could
// wake it too early, find nothing, and leave the message to the next tick.
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace fabu::coordinator {

// Rings the bell (never blocks on the store), and tells the other
// coordinators through the publisher, if one is set: the one delivering may
// be another (store/lease.hpp).
void RingOutbox();

// Who RingOutbox tells besides this process; set once, before the daemon
// runs. Must be quick and thread-safe.
void SetOutboxPublisher(std::function<void()> publisher);

// Rings the bell for a message another coordinator queued (not published
// again).
void RingOutboxFromPeer();

// How many times the bell has rung since the process started.
std::uint64_t OutboxRings();

// Waits until the bell rings after `seen` (a value of OutboxRings()), or
// `timeout` passes, or WakeOutboxWaiters is called.
// Returns the current ring count.
std::uint64_t WaitForOutbox(std::uint64_t seen, std::chrono::milliseconds timeout);

// Wakes every waiter at once (used to stop the worker).
void WakeOutboxWaiters();

}  // namespace fabu::coordinator
