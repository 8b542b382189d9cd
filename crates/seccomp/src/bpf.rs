//! A small classic-BPF assembler with labels, so the compiler can emit jumps
//! to code it has not placed yet.

use libc::sock_filter;

use crate::Error;

/// A jump destination: the next instruction or a label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    Next,
    Label(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Eq,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy)]
enum Insn {
    /// Load the 32-bit word at this offset of `struct seccomp_data`.
    Load(u32),
    /// A &= k
    And(u32),
    /// Conditional jump on A against k. Distances must fit in a byte.
    Jump {
        cmp: Cmp,
        k: u32,
        then: Target,
        otherwise: Target,
    },
    /// Unconditional jump; any distance.
    Goto(usize),
    Return(u32),
    /// Places a label; takes no space.
    Place(usize),
}

#[derive(Debug, Default)]
pub(crate) struct Assembler {
    code: Vec<Insn>,
    labels: usize,
}

impl Assembler {
    pub(crate) fn label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }

    pub(crate) fn place(&mut self, label: usize) {
        self.code.push(Insn::Place(label));
    }

    pub(crate) fn load(&mut self, offset: u32) {
        self.code.push(Insn::Load(offset));
    }

    pub(crate) fn and(&mut self, k: u32) {
        self.code.push(Insn::And(k));
    }

    pub(crate) fn jump(&mut self, cmp: Cmp, k: u32, then: Target, otherwise: Target) {
        self.code.push(Insn::Jump {
            cmp,
            k,
            then,
            otherwise,
        });
    }

    /// Jumps to `label` when `A cmp k`, however far away it is, by skipping
    /// over an unconditional jump otherwise.
    pub(crate) fn jump_far_if(&mut self, cmp: Cmp, k: u32, label: usize) {
        let skip = self.label();
        self.jump(cmp, k, Target::Next, Target::Label(skip));
        self.goto(label);
        self.place(skip);
    }

    pub(crate) fn goto(&mut self, label: usize) {
        self.code.push(Insn::Goto(label));
    }

    pub(crate) fn ret(&mut self, action: u32) {
        self.code.push(Insn::Return(action));
    }

    /// Resolves labels into a kernel-ready program.
    pub(crate) fn finish(self) -> Result<Vec<sock_filter>, Error> {
        let mut positions = vec![usize::MAX; self.labels];
        let mut pc = 0;
        for insn in &self.code {
            match insn {
                Insn::Place(label) => positions[*label] = pc,
                _ => pc += 1,
            }
        }
        if pc > libc::BPF_MAXINSNS as usize {
            return Err(Error::TooLarge(pc));
        }
        let mut program = Vec::with_capacity(pc);
        for insn in &self.code {
            let here = program.len();
            // Offsets count from the instruction after this one.
            let distance = |label: usize| positions[label] - here - 1;
            let short = |t: Target| -> Result<u8, Error> {
                match t {
                    Target::Next => Ok(0),
                    Target::Label(l) => u8::try_from(distance(l)).map_err(|_| Error::TooLarge(pc)),
                }
            };
            let filter = match *insn {
                Insn::Place(_) => continue,
                Insn::Load(offset) => stmt(BPF_LD | BPF_W | BPF_ABS, offset),
                Insn::And(k) => stmt(BPF_ALU | BPF_AND | BPF_K, k),
                Insn::Jump {
                    cmp,
                    k,
                    then,
                    otherwise,
                } => {
                    let op = match cmp {
                        Cmp::Eq => BPF_JEQ,
                        Cmp::Gt => BPF_JGT,
                        Cmp::Ge => BPF_JGE,
                    };
                    sock_filter {
                        code: (BPF_JMP | op | BPF_K) as u16,
                        jt: short(then)?,
                        jf: short(otherwise)?,
                        k,
                    }
                }
                Insn::Goto(label) => stmt(BPF_JMP | BPF_JA, distance(label) as u32),
                Insn::Return(action) => stmt(BPF_RET | BPF_K, action),
            };
            program.push(filter);
        }
        Ok(program)
    }
}

fn stmt(code: u32, k: u32) -> sock_filter {
    sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

const BPF_LD: u32 = 0x00;
const BPF_ALU: u32 = 0x04;
const BPF_JMP: u32 = 0x05;
const BPF_RET: u32 = 0x06;
const BPF_W: u32 = 0x00;
const BPF_ABS: u32 = 0x20;
const BPF_AND: u32 = 0x50;
const BPF_JA: u32 = 0x00;
const BPF_JEQ: u32 = 0x10;
const BPF_JGT: u32 = 0x20;
const BPF_JGE: u32 = 0x30;
const BPF_K: u32 = 0x00;
