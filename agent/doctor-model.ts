/**
 * The tiny model doctor loads with each execution provider: `seededMlp({ seed: 7, sizes: [4, 8, 2] })`
 * (input `input` [batch, 4] float32 → Gemm, Relu, Gemm → `output` [batch, 2]), 479 bytes of ONNX. Kept as
 * bytes so the agent does not carry the ONNX encoder (onnx-proto, protobufjs) just for this; a test checks
 * they are still what the encoder makes.
 */
const BASE64 =
  'CAgSCWVkZ2VmbGVldDIAOscDCiMKBWlucHV0CgJXMAoCQjASBWdlbW0wGgVnZW1tMCIER2VtbQoZCgVnZW1tMBIEYWN0MBoEYWN0MCIE' +
  'UmVsdQojCgRhY3QwCgJXMQoCQjESBm91dHB1dBoFZ2VtbTEiBEdlbW0SA21scCqNAQoCBAgQAUICVzBKgAEiyDC/ipYev7WoLD+4HJA+' +
  '03L4PLjRCL77mUO9dVC8voxymj2yaKY+Olyvvrge+b60OL8+pzLVPMpL275lNz++drSVvps7ST0AeZO+9AgtPyLOtr5VxQg/BuTfvoMC' +
  'Ab9/EPq+FF6XvsS8ij3nnb0+eQoavyGAFT8dkJs9ryEwPiorCgEIEAFCAkIwSiDNhxM9kN6+PQbJyzyIhqw9VjKGPcFsvL3ZJIW9g1Lq' +
  'vCpMCgIIAhABQgJXMUpAUvTsvYdLPr+5WiO/MZbUPhrdT746g+i95tlGver3MD9rPaE+6FqVPu9Thr496GO+yEAPv/puEb+UziM/P9mM' +
  'vioTCgECEAFCAkIxSgj1pH29XpzYPFocCgVpbnB1dBITChEIARINCgcSBWJhdGNoCgIIBGIdCgZvdXRwdXQSEwoRCAESDQoHEgViYXRj' +
  'aAoCCAJCBAoAEA0=';

/** The model's bytes, its input's name and its feature count. */
export const DOCTOR_MODEL = {
  bytes: (): Uint8Array => Buffer.from(BASE64, 'base64'),
  input: 'input',
  features: 4,
} as const;
