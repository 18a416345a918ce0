import { steps } from '../../src/steps.js';
import { runStep } from '../common/run-step.js';

void runStep(steps['upload-pve']);
