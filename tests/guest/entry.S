/*
 * PVH entry: 32-bit protected mode -> long mode -> CPL3, in ~30 instructions.
 *
 * Why so short: under PVM every guest CPL0 instruction (and all 32-bit
 * start-up code) goes through KVM's instruction emulator at ~1 us each,
 * while CPL3 code runs natively (shared/machine-notes.md). So this file
 * only loads static tables (cpu_tables.S) and leaves CPL0 for good with
 * iretq; everything else, including printing, happens at CPL3.
 */
#include "tests/guest/cpu_tables.hpp"

#define CR0_PE (1 << 0)
#define CR0_PG (1 << 31)
#define CR4_PAE (1 << 5)
#define MSR_EFER 0xc0000080
#define EFER_LME (1 << 8)
#define RFLAGS_RESERVED (1 << 1)  /* bit 1 always reads 1; IF = 0, IOPL = 0 */

/*
 * Xen PVH ELF note (xen/include/public/elfnote.h, XEN_ELFNOTE_PHYS32_ENTRY).
 * QEMU reads the descriptor as 8 bytes, so it is a .quad. The section and
 * its PT_NOTE segment (probe.ld) keep 4-byte alignment, as Linux's own Xen
 * notes do: the prototype measured that this is what QEMU's note lookup
 * accepts (shared/machine-notes.md).
 */
    .section .note.Xen, "a", @note
    .balign 4
    .long 2f - 1f           /* namesz */
    .long 4f - 3f           /* descsz */
    .long 18                /* type: XEN_ELFNOTE_PHYS32_ENTRY */
1:  .asciz "Xen"
2:  .balign 4
3:  .quad probe_start32
4:  .balign 4

/*
 * Entry state (PVH, xen docs/misc/pvh.pandoc): 32-bit protected mode,
 * paging off, flat CS/DS/ES/SS, interrupts off, %ebx = hvm_start_info.
 */
    .section .text.entry, "ax"
    .code32
    .globl probe_start32
probe_start32:
    movl %ebx, probe_start_info_paddr   /* low half; the high half stays 0 */
    rdtsc                                /* boot timing: "probe: boot tsc_entry=" */
    movl %eax, probe_tsc_entry
    movl %edx, probe_tsc_entry + 4

    /* Long mode: PAE, CR3, EFER.LME, then CR0.PG (SDM Vol. 3 §10.8.5). */
    lgdt probe_gdtr
    movl %cr4, %eax
    orl $CR4_PAE, %eax
    movl %eax, %cr4
    movl $probe_pml4, %eax
    movl %eax, %cr3
    movl $MSR_EFER, %ecx
    rdmsr
    orl $EFER_LME, %eax
    wrmsr
    movl %cr0, %eax
    orl $(CR0_PG | CR0_PE), %eax
    movl %eax, %cr0
    ljmp $PROBE_KERNEL_CS, $probe_start64

    .code64
probe_start64:
    movl $PROBE_KERNEL_DS, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    xorl %eax, %eax
    movl %eax, %fs
    movl %eax, %gs
    leaq probe_kernel_stack_top(%rip), %rsp

    /*
     * The TSS matters for two things: RSP0 (the stack a fault from CPL3
     * lands on) and its all-zero I/O permission bitmap, which is what lets
     * CPL3 use in/out here -- PVM ignores RFLAGS.IOPL at CPL3.
     */
    movl $PROBE_TSS_SEL, %eax
    ltr %ax
    lidt probe_idtr(%rip)

    /* Drop to CPL3 for good (SDM Vol. 3 §6.14.3: 64-bit iret frame). */
    pushq $PROBE_USER_DS
    pushq $probe_user_stack_top
    pushq $RFLAGS_RESERVED
    pushq $PROBE_USER_CS
    pushq $probe_user_entry
    iretq

/* CPL3 trampolines: %rsp is 16-aligned here, so `call` gives the SysV ABI
 * alignment the C++ code expects. The callees never return. */
    .text
    .globl probe_user_entry
probe_user_entry:
    xorl %ebp, %ebp
    call probe_main
    ud2

    .globl probe_fault_entry
probe_fault_entry:
    xorl %ebp, %ebp
    call probe_report_fault
    ud2

/* Stacks: NOLOAD, not zeroed (probe_main zeroes .bss while on one). */
    .section .stack, "aw", @nobits
    .balign 16
    .space 4096
    .globl probe_kernel_stack_top
probe_kernel_stack_top:          /* TSS.RSP0: faults from CPL3 */
    .space 4096
    .globl probe_ist1_stack_top
probe_ist1_stack_top:            /* TSS.IST1: #DF, NMI, #MC from anywhere */
    .space 65536
    .globl probe_user_stack_top
probe_user_stack_top:            /* probe_main */
    .space 16384
    .globl probe_fault_stack_top
probe_fault_stack_top:           /* probe_report_fault: survives a blown user stack */

    .section .note.GNU-stack, "", @progbits
