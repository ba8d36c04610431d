import { transform } from 'sluice';

/** Splits each line into lower-case words and emits (word, 1). */
export default transform<string, string, number>('tokenize', (line, emit) => {
  for (const word of line.toLowerCase().split(/[^\p{L}\p{N}']+/u)) {
    if (word) emit(word, 1);
  }
});
