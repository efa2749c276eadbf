//go:build !noasm

#include "textflag.h"

// One rank-1 update of the 6x16 tile held in Y0..Y11 (row i in Y(2i), Y(2i+1)):
// B's 16 values at (BX) go to Y12, Y13 and BX moves on by R9 bytes, one row
// of B; each A value at aoff(AX) is broadcast and multiplied into its row.
#define STEP(aoff) \
	VMOVUPS      (BX), Y12;              \
	VMOVUPS      32(BX), Y13;            \
	ADDQ         R9, BX;                 \
	VBROADCASTSS aoff(AX), Y14;          \
	VFMADD231PS  Y12, Y14, Y0;           \
	VFMADD231PS  Y13, Y14, Y1;           \
	VBROADCASTSS aoff+4(AX), Y15;        \
	VFMADD231PS  Y12, Y15, Y2;           \
	VFMADD231PS  Y13, Y15, Y3;           \
	VBROADCASTSS aoff+8(AX), Y14;        \
	VFMADD231PS  Y12, Y14, Y4;           \
	VFMADD231PS  Y13, Y14, Y5;           \
	VBROADCASTSS aoff+12(AX), Y15;       \
	VFMADD231PS  Y12, Y15, Y6;           \
	VFMADD231PS  Y13, Y15, Y7;           \
	VBROADCASTSS aoff+16(AX), Y14;       \
	VFMADD231PS  Y12, Y14, Y8;           \
	VFMADD231PS  Y13, Y14, Y9;           \
	VBROADCASTSS aoff+20(AX), Y15;       \
	VFMADD231PS  Y12, Y15, Y10;          \
	VFMADD231PS  Y13, Y15, Y11

// func micro6x16AVX2(kc, tiles int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool)
// Computes tiles 6x16 tiles stacked down C: tile t uses the A panel at
// ap[t*kc*6:] and C rows from t*6 on; every tile uses the same B panel.
TEXT ·micro6x16AVX2(SB), NOSPLIT, $0-105
	MOVQ    tiles+8(FP), R10
	MOVQ    ap_base+16(FP), AX
	MOVQ    ldb+64(FP), R9
	SHLQ    $2, R9
	MOVQ    c_base+72(FP), DI
	MOVQ    ldc+96(FP), DX
	SHLQ    $2, DX
	MOVBLZX acc+104(FP), R8

tile:
	MOVQ kc+0(FP), CX
	MOVQ bp_base+40(FP), BX

	// Fetch this tile's C rows while the products accumulate.
	MOVQ       DI, SI
	PREFETCHT0 (SI)
	PREFETCHT0 63(SI)
	ADDQ       DX, SI
	PREFETCHT0 (SI)
	PREFETCHT0 63(SI)
	ADDQ       DX, SI
	PREFETCHT0 (SI)
	PREFETCHT0 63(SI)
	ADDQ       DX, SI
	PREFETCHT0 (SI)
	PREFETCHT0 63(SI)
	ADDQ       DX, SI
	PREFETCHT0 (SI)
	PREFETCHT0 63(SI)
	ADDQ       DX, SI
	PREFETCHT0 (SI)
	PREFETCHT0 63(SI)

	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11

loop4:
	CMPQ CX, $4
	JLT  tail
	STEP(0)
	STEP(24)
	STEP(48)
	STEP(72)
	ADDQ $96, AX
	SUBQ $4, CX
	JMP  loop4

tail:
	TESTQ CX, CX
	JEQ   store
	STEP(0)
	ADDQ  $24, AX
	DECQ  CX
	JMP   tail

store:
	TESTL R8, R8
	JEQ   put
	VADDPS (DI), Y0, Y0
	VADDPS 32(DI), Y1, Y1
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    DX, DI
	VADDPS (DI), Y2, Y2
	VADDPS 32(DI), Y3, Y3
	VMOVUPS Y2, (DI)
	VMOVUPS Y3, 32(DI)
	ADDQ    DX, DI
	VADDPS (DI), Y4, Y4
	VADDPS 32(DI), Y5, Y5
	VMOVUPS Y4, (DI)
	VMOVUPS Y5, 32(DI)
	ADDQ    DX, DI
	VADDPS (DI), Y6, Y6
	VADDPS 32(DI), Y7, Y7
	VMOVUPS Y6, (DI)
	VMOVUPS Y7, 32(DI)
	ADDQ    DX, DI
	VADDPS (DI), Y8, Y8
	VADDPS 32(DI), Y9, Y9
	VMOVUPS Y8, (DI)
	VMOVUPS Y9, 32(DI)
	ADDQ    DX, DI
	VADDPS (DI), Y10, Y10
	VADDPS 32(DI), Y11, Y11
	VMOVUPS Y10, (DI)
	VMOVUPS Y11, 32(DI)
	ADDQ    DX, DI
	JMP     next

put:
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	ADDQ    DX, DI
	VMOVUPS Y2, (DI)
	VMOVUPS Y3, 32(DI)
	ADDQ    DX, DI
	VMOVUPS Y4, (DI)
	VMOVUPS Y5, 32(DI)
	ADDQ    DX, DI
	VMOVUPS Y6, (DI)
	VMOVUPS Y7, 32(DI)
	ADDQ    DX, DI
	VMOVUPS Y8, (DI)
	VMOVUPS Y9, 32(DI)
	ADDQ    DX, DI
	VMOVUPS Y10, (DI)
	VMOVUPS Y11, 32(DI)
	ADDQ    DX, DI

next:
	DECQ R10
	JNE  tile
	VZEROUPPER
	RET

// func packB16AVX(kc, panels int, b []float32, ldb int, dst []float32)
// Copies panels full 16-column micro-panels of a kc-row block of B into dst
// in packB's layout: row p of panel s goes to dst[(s*kc+p)*16:].
TEXT ·packB16AVX(SB), NOSPLIT, $0-72
	MOVQ kc+0(FP), CX
	MOVQ panels+8(FP), R9
	MOVQ b_base+16(FP), SI
	MOVQ ldb+40(FP), DX
	SHLQ $2, DX
	MOVQ dst_base+48(FP), DI
	MOVQ CX, R10
	SHLQ $6, R10 // panel stride in bytes: kc*16*4

row:
	TESTQ CX, CX
	JEQ   done
	MOVQ  SI, R11
	MOVQ  DI, R12
	MOVQ  R9, BX

panel:
	TESTQ   BX, BX
	JEQ     nextrow
	VMOVUPS (R11), Y0
	VMOVUPS 32(R11), Y1
	VMOVUPS Y0, (R12)
	VMOVUPS Y1, 32(R12)
	ADDQ    $64, R11
	ADDQ    R10, R12
	DECQ    BX
	JMP     panel

nextrow:
	ADDQ DX, SI
	ADDQ $64, DI
	DECQ CX
	JMP  row

done:
	VZEROUPPER
	RET
