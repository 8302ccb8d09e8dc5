/*
 * Static CPU tables: page tables, GDT, TSS, IDT, and the CPL0 exception path.
 *
 * All of it is assembled data so entry.S only has to point the CPU at it
 * (guest CPL0 is emulated and slow here). Address pieces that descriptors
 * store split up (TSS base, gate offsets) are absolute symbols computed in
 * probe.ld: the assembler cannot shift or mask a relocatable address, the
 * linker can.
 */
#include "tests/guest/cpu_tables.hpp"

/* Paging-structure bits (SDM Vol. 3 §4.5, tables 4-15..4-18). A and D are
 * preset so neither the CPU nor a shadow MMU has to write them back. */
#define PTE_P (1 << 0)
#define PTE_RW (1 << 1)
#define PTE_US (1 << 2)   /* user-accessible: CPL3 runs everywhere */
#define PTE_PWT (1 << 3)
#define PTE_PCD (1 << 4)
#define PTE_A (1 << 5)
#define PTE_D (1 << 6)
#define PTE_PS (1 << 7)   /* 2 MiB page in a PDE */
#define TABLE_FLAGS (PTE_P | PTE_RW | PTE_US | PTE_A)
#define PAGE_2M_FLAGS (PTE_P | PTE_RW | PTE_US | PTE_A | PTE_D | PTE_PS)
/* The 4th GiB is where PCI BARs, the IOAPIC and the LAPIC live: map it
 * uncached (PCD|PWT selects PAT entry 3, UC, with the reset PAT). */
#define MMIO_HOLE_START 0xc0000000

/* ---- Page tables: identity map of 0..4 GiB with 2 MiB pages. ---- */
    .section .data.page_tables, "aw"
    .balign 4096
    .globl probe_pml4
probe_pml4:
    .quad probe_pdpt + TABLE_FLAGS
    .fill 511, 8, 0
probe_pdpt:
    .quad probe_pd + 0x0000 + TABLE_FLAGS
    .quad probe_pd + 0x1000 + TABLE_FLAGS
    .quad probe_pd + 0x2000 + TABLE_FLAGS
    .quad probe_pd + 0x3000 + TABLE_FLAGS
    .fill 508, 8, 0
probe_pd:
    .set addr, 0
    .rept 2048
    .if addr >= MMIO_HOLE_START
    .quad addr + PAGE_2M_FLAGS + PTE_PCD + PTE_PWT
    .else
    .quad addr + PAGE_2M_FLAGS
    .endif
    .set addr, addr + 0x200000
    .endr

/* ---- GDT (SDM Vol. 3 §3.4.5, §5.2.1); accessed bits preset. ---- */
    .data
    .balign 16
probe_gdt:
    .quad 0                      /* 0x00 null */
    .quad 0x00cf9b000000ffff     /* 0x08 kernel code, 32-bit (unused, as Linux) */
    .quad 0x00af9b000000ffff     /* 0x10 kernel code, 64-bit (L=1) */
    .quad 0x00cf93000000ffff     /* 0x18 kernel data */
    .quad 0x00cffb000000ffff     /* 0x20 user code, 32-bit (unused, as Linux) */
    .quad 0x00cff3000000ffff     /* 0x28 user data, DPL 3 */
    .quad 0x00affb000000ffff     /* 0x30 user code, 64-bit, DPL 3 */
    .quad 0                      /* 0x38 unused */
    /* 0x40: 64-bit available TSS descriptor (SDM Vol. 3 §8.2.3, 16 bytes). */
    .word probe_tss_limit        /* limit 15:0 (limit < 64 KiB, G = 0) */
    .word probe_tss_base_15_0
    .byte probe_tss_base_23_16
    .byte 0x89                   /* P = 1, DPL 0, type 9 = available TSS */
    .byte 0x00                   /* limit 19:16 = 0, G = 0 */
    .byte probe_tss_base_31_24
    .long 0                      /* base 63:32: probe.ld asserts < 4 GiB */
    .long 0
probe_gdt_end:

    .globl probe_gdtr
probe_gdtr:                      /* loaded by lgdt in 32-bit mode: 6 bytes */
    .word probe_gdt_end - probe_gdt - 1
    .quad probe_gdt

/* ---- TSS (SDM Vol. 3 §8.7) with a full I/O permission bitmap. ----
 * PVM ignores IOPL at CPL3, so in/out at CPL3 are allowed through this
 * bitmap instead (SDM Vol. 1 §19.5.2): one bit per port, 0 = allowed, plus
 * the trailing 0xff byte the CPU may read as part of a 2-byte check. */
#define TSS_IOPB_OFFSET 104
    .balign 16
    .globl probe_tss
probe_tss:
    .long 0                      /* reserved */
    .quad probe_kernel_stack_top /* RSP0 */
    .quad 0, 0                   /* RSP1, RSP2 */
    .quad 0                      /* reserved */
    .quad probe_ist1_stack_top   /* IST1 */
    .fill 6, 8, 0                /* IST2..IST7 */
    .quad 0                      /* reserved */
    .word 0                      /* reserved */
    .word TSS_IOPB_OFFSET
    .fill 8192, 1, 0             /* ports 0..65535 all allowed */
    .byte 0xff
probe_tss_end:
    .globl probe_tss_limit
    .set probe_tss_limit, probe_tss_end - probe_tss - 1
    .if (TSS_IOPB_OFFSET != 104)
    .error "TSS I/O bitmap must follow the 104-byte TSS"
    .endif

/* ---- IDT (SDM Vol. 3 §6.14.1): 64-bit interrupt gates, DPL 0. ----
 * Gate offsets come from probe.ld: stub i is at probe_isr_stubs + 16*i
 * and all 32 stubs lie in one 64 KiB window, so offset 15:0 is
 * probe_isr_stubs_15_0 + 16*i and offset 31:16 is the same for all. */
    .balign 16
probe_idt:
    .set vec, 0
    .rept PROBE_IDT_VECTORS
    .word probe_isr_stubs_15_0 + vec * PROBE_ISR_STUB_SIZE
    .word PROBE_KERNEL_CS
    /* #DF, NMI and #MC switch to IST1 so they get a known-good stack. */
    .if vec == 2 || vec == 8 || vec == 18
    .byte 1
    .else
    .byte 0
    .endif
    .byte 0x8e                   /* P = 1, DPL 0, type 0xE = interrupt gate */
    .word probe_isr_stubs_31_16
    .long 0                      /* offset 63:32 */
    .long 0
    .set vec, vec + 1
    .endr
probe_idt_end:

    .globl probe_idtr
probe_idtr:
    .word probe_idt_end - probe_idt - 1
    .quad probe_idt
probe_null_idtr:                 /* limit 0: any exception escalates to shutdown */
    .word 0
    .quad 0

/* Written at CPL0, read at CPL3 (identity mapped, user-accessible). Kept
 * in .data, not .bss: probe_main zeroes .bss after entry.S ran. */
    .balign 8
    .globl probe_start_info_paddr
probe_start_info_paddr:
    .quad 0
    .globl probe_tsc_entry
probe_tsc_entry:                 /* TSC at the PVH entry point (entry.S) */
    .quad 0
    .globl probe_fault_record
probe_fault_record:
    .fill 8, 8, 0
    .globl probe_fault_state
probe_fault_state:
    .byte PROBE_FAULT_STATE_NONE

/* ---- Exception stubs (CPL0). ----
 * Vectors that push an error code (SDM Vol. 3 §6.13, table 6-1: 8, 10-14,
 * 17, 21, 29, 30) get none pushed here; the others push a 0 so the frame
 * is the same for all: vector, error, RIP, CS, RFLAGS, RSP, SS. */
    .text
    .balign 512                  /* 32 stubs x 16 bytes in one 512-byte block */
    .globl probe_isr_stubs
probe_isr_stubs:
    .set vec, 0
    .rept PROBE_IDT_VECTORS
    .balign PROBE_ISR_STUB_SIZE
    .if vec == 8 || (vec >= 10 && vec <= 14) || vec == 17 || vec == 21 || vec == 29 || vec == 30
    .else
    pushq $0
    .endif
    pushq $vec
    jmp probe_isr_common
    .set vec, vec + 1
    .endr
    .balign PROBE_ISR_STUB_SIZE
    .globl probe_isr_stubs_end   /* probe.ld checks that no stub outgrew its slot */
probe_isr_stubs_end:

/*
 * Record the fault and go back to CPL3 to report it: printing from here
 * would run every loop iteration through the emulator. The CPU already
 * switched to RSP0 (or IST1). Nothing is preserved: the report ends the VM.
 */
probe_isr_common:
    cmpb $PROBE_FAULT_STATE_NONE, probe_fault_state(%rip)
    jne probe_isr_shutdown
    movb $PROBE_FAULT_STATE_REPORTING, probe_fault_state(%rip)
    popq probe_fault_record + PROBE_FR_VECTOR(%rip)
    popq probe_fault_record + PROBE_FR_ERROR(%rip)
    popq probe_fault_record + PROBE_FR_RIP(%rip)
    popq probe_fault_record + PROBE_FR_CS(%rip)
    popq probe_fault_record + PROBE_FR_RFLAGS(%rip)
    popq probe_fault_record + PROBE_FR_RSP(%rip)
    popq probe_fault_record + PROBE_FR_SS(%rip)
    movq %cr2, %rax
    movq %rax, probe_fault_record + PROBE_FR_CR2(%rip)
    pushq $PROBE_USER_DS
    pushq $probe_fault_stack_top
    pushq $2                     /* RFLAGS: reserved bit only, IF = 0 */
    pushq $PROBE_USER_CS
    pushq $probe_fault_entry
    iretq

/* Nested fault, or a terminate request from cpu::triple_fault(): with an
 * empty IDT the #UD cannot be delivered -> #GP -> #DF -> shutdown. */
probe_isr_shutdown:
    lidt probe_null_idtr(%rip)
    ud2
