/*
 * interrupt.c -- the process-wide interrupt flag of the long runs
 * (stefast.h, "interrupting long runs").
 *
 * A plain int accessed only through the compiler's atomic builtins: lock-free,
 * so setting it is async-signal-safe (a SIGINT handler may do it), and the
 * polls (relaxed loads, once per block or step) cost nothing measurable. No
 * ordering is needed: a run only has to see the flag eventually.
 */
#include <signal.h>

#include "stefast.h"

#if defined(__GNUC__)
static int interrupt_flag = 0;
#define FLAG_STORE(value) __atomic_store_n(&interrupt_flag, (value), __ATOMIC_RELAXED)
#define FLAG_LOAD() __atomic_load_n(&interrupt_flag, __ATOMIC_RELAXED)
#else
/* what C99 itself offers a signal handler; the GCC builds above use atomics */
static volatile sig_atomic_t interrupt_flag = 0;
#define FLAG_STORE(value) (interrupt_flag = (value))
#define FLAG_LOAD() (interrupt_flag)
#endif

void stefast_request_interrupt(void)
{
    FLAG_STORE(1);
}

void stefast_clear_interrupt(void)
{
    FLAG_STORE(0);
}

int stefast_interrupt_requested(void)
{
    return FLAG_LOAD() != 0;
}
