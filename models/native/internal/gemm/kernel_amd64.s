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

// func packBRows16AVX(kc, panels int, b []float32, off []int, dst []float32)
// packB16AVX for rows gathered by offset: row p is b[off[p]:], copied to
// dst[(s*kc+p)*16:] for each of panels whole 16-column panels s.
TEXT ·packBRows16AVX(SB), NOSPLIT, $0-88
	MOVQ kc+0(FP), CX
	MOVQ panels+8(FP), R9
	MOVQ b_base+16(FP), R13
	MOVQ off_base+40(FP), R14
	MOVQ dst_base+64(FP), DI
	MOVQ CX, R10
	SHLQ $6, R10 // panel stride in bytes: kc*16*4

rrow:
	TESTQ CX, CX
	JEQ   rdone
	MOVQ  (R14), R11
	LEAQ  (R13)(R11*4), R11
	MOVQ  DI, R12
	MOVQ  R9, BX

rpanel:
	TESTQ   BX, BX
	JEQ     rnextrow
	VMOVUPS (R11), Y0
	VMOVUPS 32(R11), Y1
	VMOVUPS Y0, (R12)
	VMOVUPS Y1, 32(R12)
	ADDQ    $64, R11
	ADDQ    R10, R12
	DECQ    BX
	JMP     rpanel

rnextrow:
	ADDQ $8, R14
	ADDQ $64, DI
	DECQ CX
	JMP  rrow

rdone:
	VZEROUPPER
	RET

// LOAD8 loads 8 floats from each of the 8 rows at (R13) + i*R8 into Y0..Y7.
#define LOAD8 \
	VMOVUPS (R13), Y0;         \
	VMOVUPS (R13)(R8*1), Y1;   \
	VMOVUPS (R13)(R8*2), Y2;   \
	VMOVUPS (R13)(R9*1), Y3;   \
	LEAQ    (R13)(R8*4), R15;  \
	VMOVUPS (R15), Y4;         \
	VMOVUPS (R15)(R8*1), Y5;   \
	VMOVUPS (R15)(R8*2), Y6;   \
	VMOVUPS (R15)(R9*1), Y7

// TRANSPOSE8 transposes the 8x8 block in Y0..Y7 into Y8..Y15.
#define TRANSPOSE8 \
	VUNPCKLPS  Y1, Y0, Y8;        \
	VUNPCKHPS  Y1, Y0, Y9;        \
	VUNPCKLPS  Y3, Y2, Y10;       \
	VUNPCKHPS  Y3, Y2, Y11;       \
	VUNPCKLPS  Y5, Y4, Y12;       \
	VUNPCKHPS  Y5, Y4, Y13;       \
	VUNPCKLPS  Y7, Y6, Y14;       \
	VUNPCKHPS  Y7, Y6, Y15;       \
	VSHUFPS    $0x44, Y10, Y8, Y0; \
	VSHUFPS    $0xEE, Y10, Y8, Y1; \
	VSHUFPS    $0x44, Y11, Y9, Y2; \
	VSHUFPS    $0xEE, Y11, Y9, Y3; \
	VSHUFPS    $0x44, Y14, Y12, Y4; \
	VSHUFPS    $0xEE, Y14, Y12, Y5; \
	VSHUFPS    $0x44, Y15, Y13, Y6; \
	VSHUFPS    $0xEE, Y15, Y13, Y7; \
	VPERM2F128 $0x20, Y4, Y0, Y8;  \
	VPERM2F128 $0x20, Y5, Y1, Y9;  \
	VPERM2F128 $0x20, Y6, Y2, Y10; \
	VPERM2F128 $0x20, Y7, Y3, Y11; \
	VPERM2F128 $0x31, Y4, Y0, Y12; \
	VPERM2F128 $0x31, Y5, Y1, Y13; \
	VPERM2F128 $0x31, Y6, Y2, Y14; \
	VPERM2F128 $0x31, Y7, Y3, Y15

// func packBT16AVX(kc8, panels int, bt []float32, ldb int, dst []float32, kc int)
// Packs the first kc8 (a multiple of 8) columns of panels whole 16-row
// groups of B^T (row stride ldb) into dst in packB's layout for depth kc:
// dst[(s*kc+p)*16+j] = bt[(s*16+j)*ldb+p], by 8x8 transposes.
TEXT ·packBT16AVX(SB), NOSPLIT, $0-80
	MOVQ panels+8(FP), BX
	MOVQ bt_base+16(FP), SI
	MOVQ ldb+40(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R9
	MOVQ dst_base+48(FP), DI
	MOVQ kc+72(FP), R10
	SHLQ $6, R10 // bytes per packed panel: kc*16*4

panel:
	TESTQ BX, BX
	JEQ   done
	MOVQ  SI, R11 // rows 0-7 of the group
	MOVQ  DI, R12
	MOVQ  $2, DX

group:
	MOVQ R11, R13
	MOVQ R12, R14
	MOVQ kc8+0(FP), CX
	SHRQ $3, CX

block:
	TESTQ CX, CX
	JEQ   nextgroup
	LOAD8
	TRANSPOSE8
	VMOVUPS Y8, (R14)
	VMOVUPS Y9, 64(R14)
	VMOVUPS Y10, 128(R14)
	VMOVUPS Y11, 192(R14)
	VMOVUPS Y12, 256(R14)
	VMOVUPS Y13, 320(R14)
	VMOVUPS Y14, 384(R14)
	VMOVUPS Y15, 448(R14)
	ADDQ    $32, R13
	ADDQ    $512, R14
	DECQ    CX
	JMP     block

nextgroup:
	LEAQ (R11)(R8*8), R11 // rows 8-15
	ADDQ $32, R12         // columns 8-15 of the panel
	DECQ DX
	JNE  group
	MOVQ R11, SI
	ADDQ R10, DI
	DECQ BX
	JMP  panel

done:
	VZEROUPPER
	RET

// SROW multiplies the A value at aoff(AX) into one row (c0, c1) of the 6x8
// tile, B's 8 values being in X12, X13: SSE has no FMA, so multiply, add.
#define SROW(aoff, c0, c1) \
	MOVSS  aoff(AX), X14; \
	SHUFPS $0, X14, X14;  \
	MOVAPS X14, X15;      \
	MULPS  X12, X15;      \
	ADDPS  X15, c0;       \
	MULPS  X13, X14;      \
	ADDPS  X14, c1

// SSTEP is one rank-1 update of the 6x8 tile in X0..X11 (row i in X(2i),
// X(2i+1)); B's row is at (BX), which moves on by R9 bytes.
#define SSTEP(aoff) \
	MOVUPS (BX), X12;          \
	MOVUPS 16(BX), X13;        \
	ADDQ   R9, BX;             \
	SROW(aoff, X0, X1);        \
	SROW(aoff+4, X2, X3);      \
	SROW(aoff+8, X4, X5);      \
	SROW(aoff+12, X6, X7);     \
	SROW(aoff+16, X8, X9);     \
	SROW(aoff+20, X10, X11)

// SADD adds one row of the tile into C at (DI); SPUT stores it there. Both
// move DI to the next row.
#define SADD(c0, c1) \
	MOVUPS (DI), X12;   \
	MOVUPS 16(DI), X13; \
	ADDPS  X12, c0;     \
	ADDPS  X13, c1;     \
	SPUT(c0, c1)

#define SPUT(c0, c1) \
	MOVUPS c0, (DI);    \
	MOVUPS c1, 16(DI);  \
	ADDQ   DX, DI

// func micro6x8SSE(kc, tiles int, ap, bp []float32, ldb int, c []float32, ldc int, acc bool)
// The SSE counterpart of micro6x16AVX2 for 6x8 tiles, for amd64 CPUs
// without AVX2 or FMA.
TEXT ·micro6x8SSE(SB), NOSPLIT, $0-105
	MOVQ    tiles+8(FP), R10
	MOVQ    ap_base+16(FP), AX
	MOVQ    ldb+64(FP), R9
	SHLQ    $2, R9
	MOVQ    c_base+72(FP), DI
	MOVQ    ldc+96(FP), DX
	SHLQ    $2, DX
	MOVBLZX acc+104(FP), R8

stile:
	MOVQ  kc+0(FP), CX
	MOVQ  bp_base+40(FP), BX
	XORPS X0, X0
	XORPS X1, X1
	XORPS X2, X2
	XORPS X3, X3
	XORPS X4, X4
	XORPS X5, X5
	XORPS X6, X6
	XORPS X7, X7
	XORPS X8, X8
	XORPS X9, X9
	XORPS X10, X10
	XORPS X11, X11

sloop2:
	CMPQ CX, $2
	JLT  stail
	SSTEP(0)
	SSTEP(24)
	ADDQ $48, AX
	SUBQ $2, CX
	JMP  sloop2

stail:
	TESTQ CX, CX
	JEQ   sstore
	SSTEP(0)
	ADDQ  $24, AX

sstore:
	TESTL R8, R8
	JEQ   sset
	SADD(X0, X1)
	SADD(X2, X3)
	SADD(X4, X5)
	SADD(X6, X7)
	SADD(X8, X9)
	SADD(X10, X11)
	JMP   snext

sset:
	SPUT(X0, X1)
	SPUT(X2, X3)
	SPUT(X4, X5)
	SPUT(X6, X7)
	SPUT(X8, X9)
	SPUT(X10, X11)

snext:
	DECQ R10
	JNE  stile
	RET

// func packB8SSE(kc, panels int, b []float32, ldb int, dst []float32)
// packB16AVX for 8-column panels, in SSE.
TEXT ·packB8SSE(SB), NOSPLIT, $0-72
	MOVQ kc+0(FP), CX
	MOVQ panels+8(FP), R9
	MOVQ b_base+16(FP), SI
	MOVQ ldb+40(FP), DX
	SHLQ $2, DX
	MOVQ dst_base+48(FP), DI
	MOVQ CX, R10
	SHLQ $5, R10 // panel stride in bytes: kc*8*4

srow:
	TESTQ CX, CX
	JEQ   sdone
	MOVQ  SI, R11
	MOVQ  DI, R12
	MOVQ  R9, BX

spanel:
	TESTQ  BX, BX
	JEQ    snextrow
	MOVUPS (R11), X0
	MOVUPS 16(R11), X1
	MOVUPS X0, (R12)
	MOVUPS X1, 16(R12)
	ADDQ   $32, R11
	ADDQ   R10, R12
	DECQ   BX
	JMP    spanel

snextrow:
	ADDQ DX, SI
	ADDQ $32, DI
	DECQ CX
	JMP  srow

sdone:
	RET

// APUT stores the first 6 values of the transposed row y (x its low half)
// at off(R14).
#define APUT(y, x, off) \
	VMOVUPS      x, off(R14);     \
	VEXTRACTF128 $1, y, X0;       \
	VMOVSD       X0, off+16(R14)

// func packA6AVX(kc8, panels int, a []float32, lda int, dst []float32, kc int)
// Packs the first kc8 (a multiple of 8) columns of panels whole 6-row
// panels of A (row stride lda) into dst in packA's layout for depth kc:
// dst[(r*kc+p)*6+i] = a[(r*6+i)*lda+p], by 8x8 transposes with two zero
// rows, storing 6 of each transposed row's 8 values.
TEXT ·packA6AVX(SB), NOSPLIT, $0-80
	MOVQ panels+8(FP), BX
	MOVQ a_base+16(FP), SI
	MOVQ lda+40(FP), R8
	SHLQ $2, R8
	LEAQ (R8)(R8*2), R9
	MOVQ dst_base+48(FP), DI
	MOVQ kc+72(FP), R10
	IMULQ $24, R10 // bytes per packed panel: kc*6*4

apanel:
	TESTQ BX, BX
	JEQ   adone
	MOVQ  SI, R13
	MOVQ  DI, R14
	MOVQ  kc8+0(FP), CX
	SHRQ  $3, CX

ablock:
	TESTQ   CX, CX
	JEQ     anext
	VMOVUPS (R13), Y0
	VMOVUPS (R13)(R8*1), Y1
	VMOVUPS (R13)(R8*2), Y2
	VMOVUPS (R13)(R9*1), Y3
	LEAQ    (R13)(R8*4), R15
	VMOVUPS (R15), Y4
	VMOVUPS (R15)(R8*1), Y5
	VXORPS  Y6, Y6, Y6
	VXORPS  Y7, Y7, Y7
	TRANSPOSE8
	APUT(Y8, X8, 0)
	APUT(Y9, X9, 24)
	APUT(Y10, X10, 48)
	APUT(Y11, X11, 72)
	APUT(Y12, X12, 96)
	APUT(Y13, X13, 120)
	APUT(Y14, X14, 144)
	APUT(Y15, X15, 168)
	ADDQ    $32, R13
	ADDQ    $192, R14
	DECQ    CX
	JMP     ablock

anext:
	LEAQ (SI)(R8*4), SI
	LEAQ (SI)(R8*2), SI // six rows on
	ADDQ R10, DI
	DECQ BX
	JMP  apanel

adone:
	VZEROUPPER
	RET
