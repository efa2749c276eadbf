//go:build !noasm

#include "textflag.h"

// func squareAsm(dst, src []float32)
TEXT ·squareAsm(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ src_base+24(FP), SI
	MOVQ src_len+32(FP), CX

sq32:
	CMPQ    CX, $32
	JL      sq8
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	VMULPS  Y0, Y0, Y0
	VMULPS  Y1, Y1, Y1
	VMULPS  Y2, Y2, Y2
	VMULPS  Y3, Y3, Y3
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, 32(DI)
	VMOVUPS Y2, 64(DI)
	VMOVUPS Y3, 96(DI)
	ADDQ    $128, SI
	ADDQ    $128, DI
	SUBQ    $32, CX
	JMP     sq32

sq8:
	CMPQ    CX, $8
	JL      sq1
	VMOVUPS (SI), Y0
	VMULPS  Y0, Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $8, CX
	JMP     sq8

sq1:
	TESTQ  CX, CX
	JE     sqdone
	VMOVSS (SI), X0
	VMULSS X0, X0, X0
	VMOVSS X0, (DI)
	ADDQ   $4, SI
	ADDQ   $4, DI
	DECQ   CX
	JMP    sq1

sqdone:
	VZEROUPPER
	RET

// The GDN loops: y = x / sqrt(y + off) (or x * sqrt(y + off)), 16, 8 and
// then 1 value at a time.

// func gdnDivAsm(y, x []float32, off float32)
TEXT ·gdnDivAsm(SB), NOSPLIT, $0-52
	MOVQ         y_base+0(FP), DI
	MOVQ         x_base+24(FP), SI
	MOVQ         x_len+32(FP), CX
	VBROADCASTSS off+48(FP), Y15

div16:
	CMPQ    CX, $16
	JL      div8
	VADDPS  (DI), Y15, Y0
	VADDPS  32(DI), Y15, Y1
	VSQRTPS Y0, Y0
	VSQRTPS Y1, Y1
	VMOVUPS (SI), Y2
	VMOVUPS 32(SI), Y3
	VDIVPS  Y0, Y2, Y2
	VDIVPS  Y1, Y3, Y3
	VMOVUPS Y2, (DI)
	VMOVUPS Y3, 32(DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	SUBQ    $16, CX
	JMP     div16

div8:
	CMPQ    CX, $8
	JL      div1
	VADDPS  (DI), Y15, Y0
	VSQRTPS Y0, Y0
	VMOVUPS (SI), Y2
	VDIVPS  Y0, Y2, Y2
	VMOVUPS Y2, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $8, CX
	JMP     div8

div1:
	TESTQ   CX, CX
	JE      divdone
	VMOVSS  (DI), X0
	VADDSS  X15, X0, X0
	VSQRTSS X0, X0, X0
	VMOVSS  (SI), X2
	VDIVSS  X0, X2, X2
	VMOVSS  X2, (DI)
	ADDQ    $4, SI
	ADDQ    $4, DI
	DECQ    CX
	JMP     div1

divdone:
	VZEROUPPER
	RET

// func gdnMulAsm(y, x []float32, off float32)
TEXT ·gdnMulAsm(SB), NOSPLIT, $0-52
	MOVQ         y_base+0(FP), DI
	MOVQ         x_base+24(FP), SI
	MOVQ         x_len+32(FP), CX
	VBROADCASTSS off+48(FP), Y15

mul16:
	CMPQ    CX, $16
	JL      mul8
	VADDPS  (DI), Y15, Y0
	VADDPS  32(DI), Y15, Y1
	VSQRTPS Y0, Y0
	VSQRTPS Y1, Y1
	VMOVUPS (SI), Y2
	VMOVUPS 32(SI), Y3
	VMULPS  Y0, Y2, Y2
	VMULPS  Y1, Y3, Y3
	VMOVUPS Y2, (DI)
	VMOVUPS Y3, 32(DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	SUBQ    $16, CX
	JMP     mul16

mul8:
	CMPQ    CX, $8
	JL      mul1
	VADDPS  (DI), Y15, Y0
	VSQRTPS Y0, Y0
	VMOVUPS (SI), Y2
	VMULPS  Y0, Y2, Y2
	VMOVUPS Y2, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $8, CX
	JMP     mul8

mul1:
	TESTQ   CX, CX
	JE      muldone
	VMOVSS  (DI), X0
	VADDSS  X15, X0, X0
	VSQRTSS X0, X0, X0
	VMOVSS  (SI), X2
	VMULSS  X0, X2, X2
	VMOVSS  X2, (DI)
	ADDQ    $4, SI
	ADDQ    $4, DI
	DECQ    CX
	JMP     mul1

muldone:
	VZEROUPPER
	RET

// func gather2Asm(dst, src []float32)
// Eight outputs at a time read src[2b .. 2b+15]; the rest, whose 16-value
// window would pass the last value read (2n-2), go one by one.
TEXT ·gather2Asm(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	MOVQ src_base+24(FP), SI
	// Blocks of 8 need 2b+15 <= 2n-2, i.e. b+8 <= n-1 (rounded down).
	LEAQ -1(CX), DX

g8:
	CMPQ     DX, $8
	JL       g1
	VMOVUPS  (SI), Y0
	VMOVUPS  32(SI), Y1
	VSHUFPS  $0x88, Y1, Y0, Y2
	VPERMPD  $0xD8, Y2, Y2
	VMOVUPS  Y2, (DI)
	ADDQ     $64, SI
	ADDQ     $32, DI
	SUBQ     $8, CX
	SUBQ     $8, DX
	JMP      g8

g1:
	TESTQ  CX, CX
	JE     gdone
	MOVL   (SI), AX
	MOVL   AX, (DI)
	ADDQ   $8, SI
	ADDQ   $4, DI
	DECQ   CX
	JMP    g1

gdone:
	VZEROUPPER
	RET

// func biasRowsAsm(dst []float32, ds int, src []float32, ss, rows, cols int, bias float32, relu bool)
// dst[r*ds+j] = src[r*ss+j] + bias, then max(., 0) when relu is set, for
// r < rows and j < cols; 16 columns at a time, the last partial 16 under
// a mask.
TEXT ·biasRowsAsm(SB), NOSPLIT, $0-85
	MOVQ         dst_base+0(FP), DI
	MOVQ         ds+24(FP), R8
	SHLQ         $2, R8
	MOVQ         src_base+32(FP), SI
	MOVQ         ss+56(FP), R9
	SHLQ         $2, R9
	MOVQ         rows+64(FP), R11
	MOVQ         cols+72(FP), DX
	VBROADCASTSS bias+80(FP), Z2
	MOVBLZX      relu+84(FP), R10
	VPXORD       Z3, Z3, Z3
	MOVQ         DX, CX
	ANDQ         $15, CX
	MOVL         $1, BX
	SHLL         CX, BX
	DECL         BX
	KMOVW        BX, K1

brow:
	TESTQ R11, R11
	JEQ   bdone
	MOVQ  SI, R12
	MOVQ  DI, R13
	MOVQ  DX, R14

bcol:
	CMPQ    R14, $16
	JLT     btail
	VADDPS  (R12), Z2, Z0
	TESTL   R10, R10
	JEQ     2(PC)
	VMAXPS  Z3, Z0, Z0
	VMOVUPS Z0, (R13)
	ADDQ    $64, R12
	ADDQ    $64, R13
	SUBQ    $16, R14
	JMP     bcol

btail:
	TESTQ     R14, R14
	JEQ       bnext
	VMOVUPS.Z (R12), K1, Z0
	VADDPS    Z2, Z0, Z0
	TESTL     R10, R10
	JEQ       2(PC)
	VMAXPS    Z3, Z0, Z0
	VMOVUPS   Z0, K1, (R13)

bnext:
	ADDQ R9, SI
	ADDQ R8, DI
	DECQ R11
	JMP  brow

bdone:
	VZEROUPPER
	RET

// func lerpAsm(dst, a, b []float32, w float32)
// dst[i] = a[i] + w*(b[i]-a[i]) (subtract, multiply, add: no FMA, so that
// it rounds as the Go body does), 16 at a time, the tail under a mask.
TEXT ·lerpAsm(SB), NOSPLIT, $0-76
	MOVQ         dst_base+0(FP), DI
	MOVQ         dst_len+8(FP), CX
	MOVQ         a_base+24(FP), SI
	MOVQ         b_base+48(FP), DX
	VBROADCASTSS w+72(FP), Z3
	MOVQ         CX, R8
	ANDQ         $15, CX
	MOVL         $1, BX
	SHLL         CX, BX
	DECL         BX
	KMOVW        BX, K1
	SHRQ         $4, R8

lloop:
	TESTQ   R8, R8
	JEQ     ltail
	VMOVUPS (SI), Z0
	VMOVUPS (DX), Z1
	VSUBPS  Z0, Z1, Z1
	VMULPS  Z3, Z1, Z1
	VADDPS  Z0, Z1, Z1
	VMOVUPS Z1, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DX
	ADDQ    $64, DI
	DECQ    R8
	JMP     lloop

ltail:
	TESTQ     CX, CX
	JEQ       ldone
	VMOVUPS.Z (SI), K1, Z0
	VMOVUPS.Z (DX), K1, Z1
	VSUBPS    Z0, Z1, Z1
	VMULPS    Z3, Z1, Z1
	VADDPS    Z0, Z1, Z1
	VMOVUPS   Z1, K1, (DI)

ldone:
	VZEROUPPER
	RET
