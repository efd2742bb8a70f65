// nightly: a 02:00 timer batch that fans three jobs out to queue `jobs` in one output array.
const { app, output } = require('@azure/functions');

const queueOut = output.storageQueue({ queueName: 'jobs', connection: 'AzureWebJobsStorage' });

app.timer('nightly', {
    schedule: '0 0 2 * * *',
    runOnStartup: false,
    extraOutputs: [queueOut],
    handler: async (timer, context) => {
        // The occurrence this run is for, when the host says; else the time now.
        const batch = (timer && timer.scheduleStatus && timer.scheduleStatus.next) || new Date().toISOString();
        // An array sets one queue message per element.
        context.extraOutputs.set(queueOut, [1, 2, 3].map((job) => ({ job, batch })));
        context.log('fanned out 3 jobs');
    },
});
