// Descriptor-table layout shared by the assembly (entry.S, cpu_tables.S)
// and the C++ code. Included from .S files, so the C++ part is guarded.
//
// The tables themselves (GDT, TSS, IDT, page tables) are static data in
// cpu_tables.S: guest CPL0 code is emulated here (~1 us per instruction,
// see shared/machine-notes.md "KVM here is PVM"), so nothing is built at
// run time. Fields that need a split address (TSS base in its descriptor,
// handler offsets in IDT gates) come from symbols that probe.ld computes.
#pragma once

// Selectors mirror Linux's x86-64 GDT (arch/x86/include/asm/segment.h):
// PVM reports %cs as 0x33 to CPL3 code whatever the GDT says, so using the
// same numbers keeps fault frames and what user code sees consistent.
#define PROBE_KERNEL_CS 0x10
#define PROBE_KERNEL_DS 0x18
#define PROBE_USER_DS 0x2b  // index 5, RPL 3
#define PROBE_USER_CS 0x33  // index 6, RPL 3
#define PROBE_TSS_SEL 0x40  // index 8, 16-byte system descriptor

// Number of IDT gates: the architectural exceptions 0..31 (SDM Vol. 3
// §6.3.1). Anything above (external interrupts) finds no gate and turns
// into #GP, which is reported like any other fault. Interrupts stay
// disabled (RFLAGS.IF = 0) for the guest's whole life.
#define PROBE_IDT_VECTORS 32
// Each exception stub is padded to this many bytes so gate i points at
// probe_isr_stubs + i * PROBE_ISR_STUB_SIZE (probe.ld relies on it).
#define PROBE_ISR_STUB_SIZE 16

// probe_fault_state values. The CPL0 handler only records the fault and
// returns to CPL3 (probe_report_fault) to print it; a second fault while
// reporting, or a deliberate fault after a terminate request, makes it
// triple-fault the VM instead, so a broken guest always ends, never hangs.
#define PROBE_FAULT_STATE_NONE 0
#define PROBE_FAULT_STATE_REPORTING 1
#define PROBE_FAULT_STATE_TERMINATE 2

// Byte offsets inside struct FaultRecord (asserted below).
#define PROBE_FR_VECTOR 0
#define PROBE_FR_ERROR 8
#define PROBE_FR_RIP 16
#define PROBE_FR_CS 24
#define PROBE_FR_RFLAGS 32
#define PROBE_FR_RSP 40
#define PROBE_FR_SS 48
#define PROBE_FR_CR2 56

#ifndef __ASSEMBLER__

#include <cstddef>
#include <cstdint>

namespace probe::cpu {

// What the CPL0 exception stub saved: the hardware interrupt frame
// (SDM Vol. 3 §6.14.2) plus the vector, the error code (0 for vectors
// without one) and CR2 (meaningful for #PF only).
struct FaultRecord {
    uint64_t vector;
    uint64_t error;
    uint64_t rip;
    uint64_t cs;
    uint64_t rflags;
    uint64_t rsp;
    uint64_t ss;
    uint64_t cr2;
};
static_assert(offsetof(FaultRecord, vector) == PROBE_FR_VECTOR);
static_assert(offsetof(FaultRecord, error) == PROBE_FR_ERROR);
static_assert(offsetof(FaultRecord, rip) == PROBE_FR_RIP);
static_assert(offsetof(FaultRecord, cs) == PROBE_FR_CS);
static_assert(offsetof(FaultRecord, rflags) == PROBE_FR_RFLAGS);
static_assert(offsetof(FaultRecord, rsp) == PROBE_FR_RSP);
static_assert(offsetof(FaultRecord, ss) == PROBE_FR_SS);
static_assert(offsetof(FaultRecord, cr2) == PROBE_FR_CR2);

}  // namespace probe::cpu

extern "C" {
// Written by the CPL0 stub in cpu_tables.S, read at CPL3.
extern probe::cpu::FaultRecord probe_fault_record;
extern volatile uint8_t probe_fault_state;
// Physical address of hvm_start_info, saved from %ebx by entry.S.
extern uint64_t probe_start_info_paddr;
// TSC read by the first instructions at the PVH entry point (entry.S).
extern uint64_t probe_tsc_entry;
// Linker-script symbols bounding .bss (zeroed at CPL3 by probe_main).
extern char probe_bss_start[];
extern char probe_bss_end[];
}

namespace probe::cpu {

// Ends the VM with a triple fault: from CPL3, asks the CPL0 fault handler
// to load an empty IDT and fault again (#UD -> #GP -> #DF -> shutdown).
// QEMU with -no-reboot then exits with status 0; KVM reports
// KVM_EXIT_SHUTDOWN to any VMM. The last resort of exit_vm().
[[noreturn]] void triple_fault();

}  // namespace probe::cpu

#endif  // __ASSEMBLER__
