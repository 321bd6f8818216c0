// The two 8259A interrupt controllers, remapped so IRQ n arrives as vector 32+n
// (vectors 0-31 belong to CPU exceptions).
#include "defs.h"
#include "x86.h"

#define PIC1 0x20
#define PIC2 0xa0

void pic_init(void) {
  outb(PIC1, 0x11);          // ICW1: edge triggered, cascade, ICW4 follows
  outb(PIC1 + 1, IRQ_BASE);  // ICW2: vector base
  outb(PIC1 + 1, 1 << 2);    // ICW3: slave on IRQ 2
  outb(PIC1 + 1, 0x01);      // ICW4: 8086 mode
  outb(PIC2, 0x11);
  outb(PIC2 + 1, IRQ_BASE + 8);
  outb(PIC2 + 1, 2);
  outb(PIC2 + 1, 0x01);
  outb(PIC1 + 1, (uint8)~(1 << IRQ_COM1));  // unmask only COM1
  outb(PIC2 + 1, 0xff);
}

void pic_eoi(int irq) {
  if (irq >= 8) outb(PIC2, 0x20);
  outb(PIC1, 0x20);
}
