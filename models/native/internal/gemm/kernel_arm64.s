//go:build !noasm

#include "textflag.h"

// FMLAE(d, n, m, i) is FMLA Vd.4S, Vn.4S, Vm.S[i], which Go's assembler
// does not spell, as its encoding ("vector, by element", single precision).
#define FMLAE(d, n, m, i) WORD $(0x4F801000 | (((i)&1)<<21) | (((i)>>1)<<11) | ((m)<<16) | ((n)<<5) | (d))

// ROWS multiplies B's 8 values in Vb0, Vb1 by the 8 A values in Va0 (rows
// 0-3) and Va1 (rows 4-7) into the 8x8 tile held in V16..V31 (row i in
// V(16+2i), V(17+2i)).
#define ROWS(a0, a1, b0, b1) \
	FMLAE(16, b0, a0, 0); FMLAE(17, b1, a0, 0); \
	FMLAE(18, b0, a0, 1); FMLAE(19, b1, a0, 1); \
	FMLAE(20, b0, a0, 2); FMLAE(21, b1, a0, 2); \
	FMLAE(22, b0, a0, 3); FMLAE(23, b1, a0, 3); \
	FMLAE(24, b0, a1, 0); FMLAE(25, b1, a1, 0); \
	FMLAE(26, b0, a1, 1); FMLAE(27, b1, a1, 1); \
	FMLAE(28, b0, a1, 2); FMLAE(29, b1, a1, 2); \
	FMLAE(30, b0, a1, 3); FMLAE(31, b1, a1, 3)

// func micro8x8NEON(kc int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool)
TEXT ·micro8x8NEON(SB), NOSPLIT, $0-97
	MOVD  kc+0(FP), R2
	MOVD  ap_base+8(FP), R0
	MOVD  bp_base+32(FP), R1
	MOVD  ldb+56(FP), R5
	LSL   $2, R5
	MOVD  c_base+64(FP), R3
	MOVD  ldc+88(FP), R4
	LSL   $2, R4
	MOVBU acc+96(FP), R6

	// Start from C when accumulating, from zero otherwise.
	CBZ  R6, zero
	MOVD R3, R7
	VLD1 (R7), [V16.S4, V17.S4]
	ADD  R4, R7
	VLD1 (R7), [V18.S4, V19.S4]
	ADD  R4, R7
	VLD1 (R7), [V20.S4, V21.S4]
	ADD  R4, R7
	VLD1 (R7), [V22.S4, V23.S4]
	ADD  R4, R7
	VLD1 (R7), [V24.S4, V25.S4]
	ADD  R4, R7
	VLD1 (R7), [V26.S4, V27.S4]
	ADD  R4, R7
	VLD1 (R7), [V28.S4, V29.S4]
	ADD  R4, R7
	VLD1 (R7), [V30.S4, V31.S4]
	B    loop2

zero:
	VEOR V16.B16, V16.B16, V16.B16
	VEOR V17.B16, V17.B16, V17.B16
	VEOR V18.B16, V18.B16, V18.B16
	VEOR V19.B16, V19.B16, V19.B16
	VEOR V20.B16, V20.B16, V20.B16
	VEOR V21.B16, V21.B16, V21.B16
	VEOR V22.B16, V22.B16, V22.B16
	VEOR V23.B16, V23.B16, V23.B16
	VEOR V24.B16, V24.B16, V24.B16
	VEOR V25.B16, V25.B16, V25.B16
	VEOR V26.B16, V26.B16, V26.B16
	VEOR V27.B16, V27.B16, V27.B16
	VEOR V28.B16, V28.B16, V28.B16
	VEOR V29.B16, V29.B16, V29.B16
	VEOR V30.B16, V30.B16, V30.B16
	VEOR V31.B16, V31.B16, V31.B16

	// Two rank-1 updates per iteration, the second on its own registers.
loop2:
	CMP    $2, R2
	BLT    tail
	VLD1.P 32(R0), [V0.S4, V1.S4]
	VLD1.P (R1)(R5), [V2.S4, V3.S4]
	VLD1.P 32(R0), [V4.S4, V5.S4]
	VLD1.P (R1)(R5), [V6.S4, V7.S4]
	ROWS(0, 1, 2, 3)
	ROWS(4, 5, 6, 7)
	SUB    $2, R2
	B      loop2

tail:
	CBZ    R2, store
	VLD1.P 32(R0), [V0.S4, V1.S4]
	VLD1.P (R1)(R5), [V2.S4, V3.S4]
	ROWS(0, 1, 2, 3)

store:
	VST1 [V16.S4, V17.S4], (R3)
	ADD  R4, R3
	VST1 [V18.S4, V19.S4], (R3)
	ADD  R4, R3
	VST1 [V20.S4, V21.S4], (R3)
	ADD  R4, R3
	VST1 [V22.S4, V23.S4], (R3)
	ADD  R4, R3
	VST1 [V24.S4, V25.S4], (R3)
	ADD  R4, R3
	VST1 [V26.S4, V27.S4], (R3)
	ADD  R4, R3
	VST1 [V28.S4, V29.S4], (R3)
	ADD  R4, R3
	VST1 [V30.S4, V31.S4], (R3)
	RET
