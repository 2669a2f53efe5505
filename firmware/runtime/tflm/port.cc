/*
 * The few things TFLite Micro expects from its platform, for our boards.
 *
 * - micro_time: TFLM's profiler asks for a tick counter; the board already
 *   has one (TIM2 / DWT), so TFLM reads the same counter the RESULT frame
 *   reports. (TFLM's cortex_m_generic/micro_time.cc needs CMSIS device
 *   headers the generated tree does not ship.)
 * - C++ runtime hooks: TFLM is built without exceptions and RTTI and never
 *   allocates, but virtual destructors still reference operator delete,
 *   abstract classes reference __cxa_pure_virtual, and TFLITE_ABORT calls
 *   abort() (newlib's pulls in signal handling, malloc and syscalls).
 *   Defining them here keeps libstdc++ and malloc out of the firmware. None
 *   is called in normal operation: if one is, the firmware stops in a loop
 *   a debugger shows by name.
 */
#include <cstddef>
#include <cstdint>

#include "tensorflow/lite/micro/micro_time.h"

extern "C" {
#include "board.h"
}

namespace tflite
{

uint32_t ticks_per_second()
{
    return tick_hz;
}

uint32_t GetCurrentTimeTicks()
{
    return ticks_read();
}

} // namespace tflite

extern "C" __attribute__((noreturn, noinline)) void tflm_unreachable_cxx_hook(void)
{
    for (;;) {
    }
}

void operator delete(void *) noexcept
{
    tflm_unreachable_cxx_hook();
}
void operator delete(void *, std::size_t) noexcept
{
    tflm_unreachable_cxx_hook();
}

extern "C" void __cxa_pure_virtual(void)
{
    tflm_unreachable_cxx_hook();
}

extern "C" void abort(void)
{
    tflm_unreachable_cxx_hook();
}
