/** Written into every model's producer_version; bump when the model kit changes what it writes. */
export const PRODUCER_VERSION = '0.1.0';
