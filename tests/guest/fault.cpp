// CPL3 side of exception handling: cpu_tables.S records the fault at CPL0
// and irets here (on its own stack) to print it, because printing at CPL0
// would run through the emulator.
#include "tests/guest/cpu_tables.hpp"
#include "tests/guest/exit.hpp"
#include "tests/guest/format.hpp"
#include "tests/guest/serial.hpp"

namespace probe {
namespace {

// Mnemonics of the architectural exceptions (SDM Vol. 3 §6.3.1, table 6-1).
const char* vector_name(uint64_t vector) {
    static constexpr const char* kNames[PROBE_IDT_VECTORS] = {
        "DE", "DB", "NMI", "BP", "OF", "BR", "UD", "NM", "DF", "CSO", "TS",
        "NP", "SS", "GP", "PF", "RSV15", "MF", "AC", "MC", "XM", "VE", "CP",
        "RSV22", "RSV23", "RSV24", "RSV25", "RSV26", "RSV27", "HV", "VC", "SX",
        "RSV31"};
    return vector < PROBE_IDT_VECTORS ? kNames[vector] : "?";
}

}  // namespace

namespace cpu {

void triple_fault() {
    probe_fault_state = PROBE_FAULT_STATE_TERMINATE;
    asm volatile("ud2" ::: "memory");
    __builtin_unreachable();
}

}  // namespace cpu
}  // namespace probe

// Entered from probe_fault_entry (entry.S) at CPL3 after a fault.
extern "C" [[noreturn]] void probe_report_fault() {
    using namespace probe;
    const cpu::FaultRecord& f = probe_fault_record;
    serial::emit(Record("fault")
                     .u("vector", f.vector)
                     .word("name", vector_name(f.vector))
                     .x("error", f.error)
                     .x("rip", f.rip)
                     .x("cs", f.cs)
                     .x("rflags", f.rflags)
                     .x("rsp", f.rsp)
                     .x("ss", f.ss)
                     .x("cr2", f.cr2));
    exit_vm(kStatusCpuException);
}
