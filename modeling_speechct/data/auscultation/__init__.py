"""Medical audio for AcuLa: one manifest layout for real datasets (ICBHI 2017, CirCor DigiScope, Coswara, CoughVID,
KAUH; `adapters`) and the embedded auscultation benchmark (`synthesis`, `build`), reports rendered from metadata
(`reports`), patient-level splits."""
