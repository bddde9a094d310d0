// radkit's own model kinds: importing this module registers them (each file registers itself).
import './xpronet.js';
import './adamatch.js';
import './mpma.js';
import './mpma-rg.js';
import './mpma-probe.js';
import './medrat.js';
import './ircp.js';
import './diseasenet.js';
import './otdrg.js';
import './vqgan.js';
import './adamatch-cyclic.js';
