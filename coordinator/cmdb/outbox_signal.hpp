// A process-wide bell rung when a message is queued in the CMDB outbox, so
// the delivery worker (delivery.hpp) sends it at once instead of at its next
// timer tick. Ringing inside a store transaction is safe: the worker reads
// the store after the writer has released it, and a rolled-back message is
// simply not found. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>

namespace fabu::coordinator {

// Rings the bell (never blocks on the store).
void RingOutbox();

// How many times the bell has rung since the process started.
std::uint64_t OutboxRings();

// Waits until the bell rings after `seen` (a value of OutboxRings()), or
// `timeout` passes, or WakeOutboxWaiters is called.
// Returns the current ring count.
std::uint64_t WaitForOutbox(std::uint64_t seen, std::chrono::milliseconds timeout);

// Wakes every waiter at once (used to stop the worker).
void WakeOutboxWaiters();

}  // namespace fabu::coordinator
