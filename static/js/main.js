// Home page entry point: the free lab (Hyper-V Manager view) of this session's lab. The lesson list
// above it is lessonlist.js.

import { LabView } from "./labview.js";

new LabView().start();
