// Driver for the 16550 UART at COM1: the partition's console.
// Output polls the Line Status Register; input arrives by interrupt (IRQ 4).
#include "defs.h"
#include "x86.h"

#define COM1 0x3f8
#define RBR 0  // receive buffer (read)
#define THR 0  // transmit holding (write)
#define IER 1  // interrupt enable
#define FCR 2  // FIFO control
#define LCR 3  // line control
#define MCR 4  // modem control
#define LSR 5  // line status
#define LSR_DR 0x01    // data ready
#define LSR_THRE 0x20  // transmit holding register empty

void uart_init(void) {
  outb(COM1 + IER, 0x00);  // no interrupts while configuring
  outb(COM1 + LCR, 0x80);  // DLAB on: set the baud-rate divisor
  outb(COM1 + 0, 1);       // 115200 baud
  outb(COM1 + 1, 0);
  outb(COM1 + LCR, 0x03);  // 8 data bits, no parity, one stop bit
  outb(COM1 + FCR, 0x07);  // enable and clear the FIFOs
  outb(COM1 + MCR, 0x0b);  // DTR, RTS, OUT2 (OUT2 gates the IRQ line)
  outb(COM1 + IER, 0x01);  // interrupt when data is received
}

void uart_putc(char c) {
  while (!(inb(COM1 + LSR) & LSR_THRE))
    ;
  outb(COM1 + THR, (uint8)c);
}

// IRQ 4: move received bytes into the console buffer. Whatever does not fit
// stays in the UART's FIFO until console_read() makes room and calls us again.
void uart_intr(void) {
  while (!console_full() && (inb(COM1 + LSR) & LSR_DR)) console_input((char)inb(COM1 + RBR));
}
